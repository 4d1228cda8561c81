#!/usr/bin/python3
"""Random-weight so-vits-svc 4.0 / 4.1 generators in the upstream checkpoint formats, golden tensors,
and a self-check.

usage:
  make_sovits_models.py OUTDIR [--clip FILE] [--data DIR] [--seconds S] [--offset S] [--no-adam]
      Real sizes. Writes OUTDIR/sovits40/{G_8000.pth,config.json} (4.0: vec256l9 units, 256-d, gin 256)
      and OUTDIR/sovits41/{G_10000.pth,config.json} (4.1: vec768l12 units, 768-d, gin 768, with
      vol_embedding), both as so-vits' train.py saves them: {"model": full fp32 state_dict (enc_q and
      f0_decoder included), "iteration", "optimizer": AdamW state_dict with its moments, "learning_rate"}
      (--no-adam keeps only the param groups, as a fresh optimizer, to save 2/3 of the disk).
      Then runs both on S seconds of a real 44.1 kHz singing clip (FILE, or the first vocadito_*.flac
      under DIR/singing; DIR defaults to $AVO_TEST_DATA or /work/shared/data; decoded with sox):
      content units from a seeded random HuBERT base (rvc_models.HubertBase, the seed of
      make_random_models.py) on the clip resampled to 16 kHz, expanded to the model frame rate;
      f0 from a small YIN estimator on the clip (case "clip") or a sung contour with vibrato and an
      unvoiced gap (case "contour"), unvoiced frames filled as so-vits' f0 predictors do; the RMS volume.
      Golden tensors go to OUTDIR/golden/ as raw little-endian float32 with index.json.
  make_sovits_models.py --small OUTDIR
      The unit-test set (about 10 s): small 4.0 and 4.1 models with the real upsampling layout
      (hop 512, rates 8,8,2,2,2) and narrow channels, their golden tensors computed in float64 from
      the float32 weights, a fp16 release file, and checkpoints with defects. See write_small().
  make_sovits_models.py --verify OUTDIR
      Reloads a full run's checkpoints (strict) and recomputes its golden audio from its golden inputs.
  make_sovits_models.py --time CKPT [--frames N] [--runs R] [--threads K]
      Times the reference's infer on CKPT (config.json beside it) for N frames (default 2584, 30 s
      at 44.1 kHz / 512) of random units, a sung contour and random draws, R runs after a warm-up,
      K torch threads (default 2); prints one JSON line {"median_s", "runs_s", ...} on stdout.
  make_sovits_models.py --selfcheck OUTDIR
      Checks that can fail (exit 1): key shapes and parameter counts of the real configs; the sine
      source against its closed form; upsampling, pitch index, unit expansion and volume against
      direct definitions; the flow's reverse undoes its forward; save -> strict reload -> identical
      outputs for both formats; the outputs depend on speaker, volume and uv.
OUTDIR must lie outside the repository (build test-tmp folders are allowed).
If torch is missing, OUTDIR/TORCH_MISSING is written and the exit code is 0 (the C tests then SKIP).
"""
import argparse
import collections
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import wave

OUT_ARG = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError:
    if "--time" in sys.argv:
        print(json.dumps({"error": "python3-torch is not installed"}))
        sys.exit(1)
    if OUT_ARG:
        os.makedirs(OUT_ARG, exist_ok=True)
        open(os.path.join(OUT_ARG, "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_random_models as MR  # noqa: E402
import rvc_models as R  # noqa: E402
import sovits_models as S  # noqa: E402

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


# ---- models, formats ---------------------------------------------------------------------------

SPEAKERS = ["nyaru", "huiyu", "nen", "paimon", "yunhao"]

SMALL = {
    # narrow channels, real upsampling layout (hop 512)
    "40": dict(version="4.0", seed=71, model=dict(inter_channels=16, hidden_channels=32, filter_channels=64,
                                                  n_heads=2, n_layers=2, upsample_initial_channel=64,
                                                  gin_channels=16, ssl_dim=32), frames=50, sid=2),
    "41": dict(version="4.1", seed=72, model=dict(inter_channels=16, hidden_channels=32, filter_channels=48,
                                                  n_heads=4, n_layers=2, upsample_initial_channel=64,
                                                  gin_channels=24, ssl_dim=48, vol_embedding=True,
                                                  n_flow_layer=3), frames=37, sid=1),
}


def build(config, seed, with_enc_q=True):
    """SynthesizerTrn under a fixed seed with torch's default init, then norms, weight-norm gains and the
    source mixer moved off trivial values (make_random_models.randomise) so every tensor matters."""
    m = MR.randomise(lambda: S.SynthesizerTrn(config, with_enc_q=with_enc_q), seed)
    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        lin = m.dec.m_source.l_linear  # every harmonic reaches the excitation, the fundamental most
        lin.weight.copy_((0.3 + 0.4 * torch.rand(lin.weight.shape, generator=g)) / torch.arange(1, 10) ** 0.5)
        lin.bias.copy_(0.05 * torch.randn(1, generator=g))
        # default init leaves the output a small wiggle on the conv_post bias: make it audio-sized
        m.dec.conv_post.weight_g.mul_(4.0)
        m.dec.conv_post.bias.copy_(0.02 * torch.randn(1, generator=g))
    return m.eval()


def adam_state(model, config, moments=True, seed=0):
    """AdamW state_dict as train.py's optimizer has it after some steps (moments drawn small), or a fresh
    one's (param groups only) when moments is False, as compress_model.py stores it."""
    t = config["train"]
    opt = torch.optim.AdamW(model.parameters(), t["learning_rate"], betas=tuple(t["betas"]), eps=t["eps"])
    sd = opt.state_dict()
    if moments:
        g = torch.Generator().manual_seed(seed)
        for i, p in enumerate(model.parameters()):
            sd["state"][i] = {"step": torch.tensor(float(1000 + i)),
                              "exp_avg": 1e-4 * torch.randn(p.shape, generator=g),
                              "exp_avg_sq": 1e-8 * torch.rand(p.shape, generator=g)}
    return sd


def save_train(model, config, path, iteration, moments=True):
    """utils.save_checkpoint: {"model", "iteration", "optimizer", "learning_rate"}, full fp32 state."""
    torch.save({"model": model.state_dict(), "iteration": iteration,
                "optimizer": adam_state(model, config, moments, iteration),
                "learning_rate": config["train"]["learning_rate"]}, path)


def save_release(model, config, path, half):
    """compress_model.py: no enc_q.*, optionally fp16, iteration 0, a fresh optimizer's state_dict."""
    sd = collections.OrderedDict((k, v.half() if half else v) for k, v in model.state_dict().items()
                                 if "enc_q" not in k)
    torch.save({"model": sd, "iteration": 0, "optimizer": adam_state(model, config, False),
                "learning_rate": 0.0001}, path)


def save_config(config, path):
    with open(path, "w") as f:
        json.dump(config, f, indent=2)


def load(path, config_path=None):
    """As utils.load_checkpoint would, but strict: every key of the inference model must be present."""
    if config_path is None:
        config_path = os.path.join(os.path.dirname(path), "config.json")
    config = json.load(open(config_path))
    cpt = torch.load(path, map_location="cpu")
    sd = cpt["model"]
    m = S.SynthesizerTrn(config, with_enc_q=any(k.startswith("enc_q.") for k in sd),
                         with_f0_decoder=any(k.startswith("f0_decoder.") for k in sd))
    m.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return m.eval(), cpt, config


def fp16_values(model):
    return MR.to_fp16_values(model)


# ---- inputs --------------------------------------------------------------------------------------

def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit("%s: need 16-bit PCM" % path)
        n, ch, sr = w.getnframes(), w.getnchannels(), w.getframerate()
        x = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    return x.reshape(-1, ch).mean(1), sr


def decode_clip(src, outdir, offset, seconds):
    """44.1 kHz and 16 kHz mono 16-bit WAVs of [offset, offset + seconds) of src, via sox."""
    if not shutil.which("sox"):
        raise SystemExit("sox is needed to decode %s" % src)
    w44 = os.path.join(outdir, "input_44k.wav")
    w16 = os.path.join(outdir, "input_16k.wav")
    subprocess.run(["sox", src, "-r", "44100", "-c", "1", "-b", "16", w44, "trim", str(offset), str(seconds)],
                   check=True)
    subprocess.run(["sox", w44, "-r", "16000", "-c", "1", "-b", "16", w16], check=True)
    return read_wav(w44)[0], read_wav(w16)[0]


def yin_f0(x, sr, hop, frame=2048, fmin=60.0, fmax=1100.0, threshold=0.15):
    """A plain YIN estimate per hop (frames centred, reflect padding): cumulative-mean-normalised
    difference, first dip under the threshold, parabolic refinement. 0 = unvoiced (no dip, or silence).
    Only used to give the golden run a real sung contour."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x) // hop
    xp = np.pad(x, (frame // 2, frame // 2), mode="reflect")
    W = frame // 2
    tmin, tmax = int(sr / fmax), min(int(sr / fmin), W - 1)
    gate = 1e-3 * max(np.sqrt(np.mean(x ** 2)), 1e-9)
    f0 = np.zeros(n)
    for i in range(n):
        seg = xp[i * hop:i * hop + frame]
        if np.sqrt(np.mean(seg ** 2)) < gate:
            continue
        e = np.concatenate([[0.0], np.cumsum(seg ** 2)])
        r = np.fft.irfft(np.fft.rfft(seg[:W], 2 * frame).conj() * np.fft.rfft(seg, 2 * frame))[:tmax + 2]
        tau = np.arange(tmax + 2)
        d = e[W] + (e[tau + W] - e[tau]) - 2 * r
        cm = np.ones_like(d)
        cs = np.cumsum(d[1:])
        cm[1:] = d[1:] * tau[1:] / np.maximum(cs, 1e-12)
        below = np.nonzero(cm[tmin:tmax] < threshold)[0]
        if len(below) == 0:
            continue
        t = tmin + below[0]
        while t + 1 < tmax and cm[t + 1] < cm[t]:
            t += 1
        a, b, c = cm[t - 1], cm[t], cm[t + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if abs(den) > 1e-12 else 0.0
        f0[i] = sr / (t + shift)
    return f0


def sung_contour(frames, hop, sr, gap=(0.45, 0.6)):
    """220 Hz with a slow half-octave swing, 5.5 Hz vibrato, and an unvoiced gap (0 Hz)."""
    t = np.arange(frames) * hop / sr
    f0 = 220.0 * 2 ** (0.5 * np.sin(2 * np.pi * 0.7 * t) + 0.03 * np.sin(2 * np.pi * 5.5 * t))
    f0[(t > gap[0]) & (t < gap[1])] = 0
    return f0


def draws(model, frames, seed):
    """The three random draws of infer: z_noise [inter, T], rand_ini [9] (entry 0 is 0), sine_noise [T*hop, 9]."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, model.inter, frames, generator=g)
    ini = torch.rand(1, S.N_HARMONICS, generator=g)
    ini[:, 0] = 0
    sn = torch.randn(1, frames * model.hop, S.N_HARMONICS, generator=g)
    return z, ini, sn


def run_case(model, gold, pre, units, f0, uv, vol, sid, noise_scale, dr, stages=False):
    """Runs infer and stores inputs that differ per case and every intermediate under prefix pre
    (gold None: nothing is stored)."""
    taps = {}
    if gold is None:  # timing runs store nothing
        gold = collections.namedtuple("NoGolden", "put")(lambda *a, **k: None)
    dt = next(model.parameters()).dtype
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dt)[None]  # noqa: E731
    c = t(units).transpose(1, 2)
    vol_t = t(vol) if vol is not None else None
    z, ini, sn = (d.to(dt) for d in dr)
    o = model.infer(c, t(f0), t(uv), torch.tensor([sid]), vol_t, noise_scale, z, ini, sn, taps)
    gold.put(pre + "f0", np.asarray(f0, np.float32), "f0 in Hz given to infer, unvoiced frames filled [T]")
    gold.put(pre + "uv", np.asarray(uv, np.float32), "1 voiced, 0 unvoiced [T]")
    gold.put(pre + "coarse", taps["coarse"][0], "f0_to_coarse(f0), 1..255 [T]", "int64")
    gold.put(pre + "x", taps["x"][0], "pre(c) + emb_uv(uv) (+ emb_vol(vol)) [hidden, T]")
    for k in ("m_p", "logs_p", "z_p", "z"):
        gold.put(pre + k, taps[k][0], k + " [inter, T]")
    gold.put(pre + "har_source", taps["har_source"][0, 0], "tanh(l_linear(9 sine harmonics + noise)) [T*hop]")
    if stages:
        for i in range(model.dec.num_upsamples):
            gold.put(pre + "dec_stage%d" % i, taps["dec_stage%d" % i][0], "generator after upsampling stage %d" % i)
    gold.put(pre + "audio", o[0, 0], "generator output [T*hop] at the model's sample rate")
    return o


# ---- full mode --------------------------------------------------------------------------------

def run_full(args):
    out = os.path.abspath(args.outdir)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    src = args.clip
    if src is None:
        clips = sorted(glob.glob(os.path.join(args.data, "singing", "vocadito_*.flac")))
        if not clips:
            raise SystemExit("no vocadito_*.flac under %s/singing; pass --clip" % args.data)
        src = clips[0]
    a44, a16 = decode_clip(src, out, args.offset, args.seconds)
    hop, sr = 512, 44100
    frames = len(a44) // hop
    gold = MR.Golden(os.path.join(out, "golden"))
    gold.put("audio_44k", a44, "input clip at 44.1 kHz")
    gold.put("audio_16k", a16, "input clip resampled to 16 kHz by sox (HuBERT input)")

    t0 = time.time()
    hub = MR.randomise(R.HubertBase, 1000)  # the seed of make_random_models.py's hubert_base.pt
    taps = {}
    with torch.no_grad():
        l12 = hub.extract(torch.from_numpy(a16)[None], 12, taps)
        l9p = hub.final_proj(taps["layer9"])
    del hub
    units = {"4.0": S.expand_units(l9p[0].T, frames, "left"), "4.1": S.expand_units(l12[0].T, frames, "nearest")}
    gold.put("units_vec256l9", units["4.0"].T, "final_proj(layer 9) of the random HuBERT, 'left'-expanded [T, 256]")
    gold.put("units_vec768l12", units["4.1"].T, "layer 12 of the random HuBERT, 'nearest'-expanded [T, 768]")
    vol = S.volume(torch.from_numpy(a44), hop)
    gold.put("vol", vol, "Volume_Extractor RMS of the 44.1 kHz clip per hop [T]")
    f0_clip = yin_f0(a44, sr, hop)
    cases = {"clip": S.fill_unvoiced(f0_clip, hop, sr), "contour": S.fill_unvoiced(sung_contour(frames, hop, sr), hop, sr)}
    gold.put("f0_clip_raw", f0_clip, "YIN f0 of the clip before filling, 0 = unvoiced [T]", "float64")
    print("units and f0: %.1f s (%d frames, %d voiced)" % (time.time() - t0, frames, int((f0_clip > 0).sum())))

    info = {}
    for tag, version, seed, it, over in (("sovits40", "4.0", 5000, 8000, {}),
                                         ("sovits41", "4.1", 6000, 10000, {"vol_embedding": True})):
        t0 = time.time()
        cfg = S.make_config(version, SPEAKERS, **over)
        net = build(cfg, seed)
        d = os.path.join(out, tag)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "G_%d.pth" % it)
        save_train(net, cfg, path, it, moments=args.adam)
        save_config(cfg, os.path.join(d, "config.json"))
        dr = draws(net, frames, seed + 7)
        pre = tag + "_"
        gold.put(pre + "z_noise", dr[0][0], "standard normal draws of the prior sample [inter, T]")
        gold.put(pre + "rand_ini", dr[1][0], "initial phases of the 9 harmonics, uniform [0, 1), first 0 [9]")
        gold.put(pre + "sine_noise", dr[2][0], "standard normal draws of the source noise [T*hop, 9]")
        for case, (f0, uv) in cases.items():
            run_case(net, gold, pre + case + "_", units[version].T.numpy(), f0, uv,
                     vol.numpy() if net.vol_embedding else None, 1, 0.4, dr)
        info[tag] = {"checkpoint": os.path.relpath(path, out), "config": tag + "/config.json", "version": version,
                     "params": S.count_params(net), "params_without_enc_q": S.count_params(net, ("enc_q.",)),
                     "params_inference": S.count_params(net, ("enc_q.", "f0_decoder.")),
                     "bytes": os.path.getsize(path), "seconds": round(time.time() - t0, 1)}
        print("%s: %s" % (tag, info[tag]))
        del net
    gold.finish(source_clip=os.path.basename(src), offset_s=args.offset, seconds=len(a44) / sr, frames=frames, hop=hop,
                sample_rate=sr, sid=1, noise_scale=0.4, models=info,
                cases={"clip": "f0 from YIN on the clip, unvoiced frames filled",
                       "contour": "sung contour with vibrato and an unvoiced gap, filled"})
    print("wrote %s" % out)


def verify(args):
    out = os.path.abspath(args.outdir)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    ix, get = MR.read_golden(os.path.join(out, "golden"))
    for tag, info in ix["models"].items():
        net, _, _ = load(os.path.join(out, info["checkpoint"]))
        pre = tag + "_"
        dr = (get(pre + "z_noise")[None], get(pre + "rand_ini")[None], get(pre + "sine_noise")[None])
        units = get("units_vec256l9" if info["version"] == "4.0" else "units_vec768l12").numpy()
        for case in ix["cases"]:
            q = pre + case + "_"
            g = MR.Golden(os.path.join(out, "verify_tmp"))
            o = run_case(net, g, q, units, get(q + "f0").numpy(), get(q + "uv").numpy(),
                         get("vol").numpy() if net.vol_embedding else None, ix["sid"], ix["noise_scale"], dr)
            want = get(q + "audio")
            d = float((o[0, 0] - want).abs().max() / want.abs().max())
            check(d <= 1e-5, "verify %s %s audio (max rel diff %.1e)" % (tag, case, d))
    shutil.rmtree(os.path.join(out, "verify_tmp"), ignore_errors=True)
    return 1 if failures else 0


# ---- small mode (unit tests) ------------------------------------------------------------------

def write_small(args):
    """OUTDIR/small{40,41}/: G_100.pth (training format, fp32, Adam moments) + config.json, golden in
    OUTDIR/golden/ (index.json, prefixes s40_ / s41_), computed in float64 from the float32 weights.
    s41 weights are rounded to fp16 values first, so OUTDIR/small41/G_100_release_half.pth (compress_model.py
    format: no enc_q, fp16) gives the same golden outputs. Defects for the loader's error paths:
      bad/G_missing_key.pth   small41 without dec.conv_post.bias (config beside it)
      bad/G_wrong_shape.pth   small41 with emb_uv.weight [3, hidden]
      bad/G_no_model.pth      {"weight": state_dict}: an RVC-style file, no "model" entry
      bad/config_ssl.json     small41 config with ssl_dim 40 (tensors say 48)
      bad/config_depthwise.json  small41 config with use_depthwise_conv true (unsupported)"""
    out = os.path.abspath(args.outdir)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    gold = MR.Golden(os.path.join(out, "golden"))
    meta = {}
    for key, spec in SMALL.items():
        cfg = S.make_config(spec["version"], SPEAKERS[:3], **spec["model"])
        net = build(cfg, spec["seed"])
        if key == "41":
            fp16_values(net)
        d = os.path.join(out, "small" + key)
        os.makedirs(d, exist_ok=True)
        save_train(net, cfg, os.path.join(d, "G_100.pth"), 100, moments=True)
        save_config(cfg, os.path.join(d, "config.json"))
        if key == "41":
            save_release(net, cfg, os.path.join(d, "G_100_release_half.pth"), half=True)
        T = spec["frames"]
        dr = draws(net, T, spec["seed"] + 7)
        g = torch.Generator().manual_seed(spec["seed"] + 9)
        units = torch.randn(T, cfg["model"]["ssl_dim"], generator=g).numpy()
        f0, uv = S.fill_unvoiced(sung_contour(T, net.hop, net.sr, gap=(0.1, 0.18)), net.hop, net.sr)
        vol = (0.05 + 0.1 * torch.rand(T, generator=g)).numpy()
        pre = "s%s_" % key
        gold.put(pre + "units", units, "content units [T, ssl_dim]")
        gold.put(pre + "vol", vol, "volume per frame [T]")
        gold.put(pre + "z_noise", dr[0][0], "prior noise [inter, T]")
        gold.put(pre + "rand_ini", dr[1][0], "initial phases [9]")
        gold.put(pre + "sine_noise", dr[2][0], "source noise [T*hop, 9]")
        run_case(net.double(), gold, pre, units, f0, uv, vol if net.vol_embedding else None, spec["sid"], 0.4, dr,
                 stages=True)
        # a second speaker without noise: z = flow^-1(m_p), no source noise; the C seed path must differ from it
        zero = (torch.zeros_like(dr[0]), dr[1], torch.zeros_like(dr[2]))
        run_case(net, gold, pre + "quiet_", units, f0, uv, vol if net.vol_embedding else None, 0, 0.0, zero)
        meta["s" + key] = {"dir": "small" + key, "checkpoint": "small%s/G_100.pth" % key, "version": spec["version"],
                           "frames": T, "sid": spec["sid"], "noise_scale": 0.4, "quiet_sid": 0,
                           "hop": net.hop, "sample_rate": net.sr, "vol_embedding": net.vol_embedding,
                           "ssl_dim": cfg["model"]["ssl_dim"], "n_speakers": cfg["model"]["n_speakers"],
                           "inter_channels": net.inter, "params": S.count_params(net)}
        if key == "41":
            bad = os.path.join(out, "bad")
            os.makedirs(bad, exist_ok=True)
            net = net.float()
            base = {"iteration": 1, "optimizer": None, "learning_rate": 1e-4}
            sd = net.state_dict()
            torch.save(dict(base, model=collections.OrderedDict((k, v) for k, v in sd.items()
                                                                if k != "dec.conv_post.bias")),
                       os.path.join(bad, "G_missing_key.pth"))
            sd2 = collections.OrderedDict(sd)
            sd2["emb_uv.weight"] = torch.zeros(3, sd["emb_uv.weight"].shape[1])
            torch.save(dict(base, model=sd2), os.path.join(bad, "G_wrong_shape.pth"))
            torch.save({"weight": sd, "config": [], "version": "v2"}, os.path.join(bad, "G_no_model.pth"))
            save_config(cfg, os.path.join(bad, "config.json"))
            c2 = copy.deepcopy(cfg)
            c2["model"]["ssl_dim"] = 40
            save_config(c2, os.path.join(bad, "config_ssl.json"))
            c3 = copy.deepcopy(cfg)
            c3["model"]["use_depthwise_conv"] = True
            save_config(c3, os.path.join(bad, "config_depthwise.json"))
    # host glue: volume of 1 s of a deterministic 44.1 kHz signal, unit expansion, unvoiced filling
    g = torch.Generator().manual_seed(81)
    tt = np.arange(44100) / 44100.0
    sig = (0.3 * np.sin(2 * np.pi * 220 * tt) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.3 * tt)) +
           0.01 * torch.randn(44100, generator=g).double().numpy()).astype(np.float32)
    gold.put("glue_audio", sig, "1 s at 44.1 kHz")
    gold.put("glue_vol", S.volume(torch.from_numpy(sig), 512), "volume(glue_audio, hop 512) [86]")
    units = torch.randn(50, 6, generator=g)
    gold.put("glue_units", units, "units [50, 6] at 50 frames/s")
    for frames in (86, 173):
        for mode in ("nearest", "left"):
            gold.put("glue_expand_%s_%d" % (mode, frames), S.expand_units(units.T, frames, mode).T,
                     "expand_units(glue_units, %d, %s) [%d, 6]" % (frames, mode, frames))
    raw = sung_contour(60, 512, 44100, gap=(0.1, 0.2))
    raw[:4] = 0
    raw[50:53] = 0
    raw[-2:] = 0
    filled, uvv = S.fill_unvoiced(raw, 512, 44100)
    gold.put("glue_f0_raw", raw, "f0 with unvoiced frames (0) at the start, in two gaps and at the end [60]", "float64")
    gold.put("glue_f0_filled", filled, "fill_unvoiced(glue_f0_raw) f0 [60]")
    gold.put("glue_uv", uvv, "fill_unvoiced(glue_f0_raw) uv [60]")
    gold.finish(models=meta, computed_in="float64 from float32 (s41: fp16-representable) weights",
                speakers=SPEAKERS[:3])
    print("wrote %s" % out)


# ---- self-check -------------------------------------------------------------------------------

def selfcheck(args):
    out = os.path.abspath(args.outdir)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.time()

    # 1. real configs: key shapes read from the upstream constructors, parameter counts
    for version, over in (("4.0", {}), ("4.1", {"vol_embedding": True})):
        cfg = S.make_config(version, SPEAKERS, **over)
        net = S.SynthesizerTrn(cfg)
        sd = net.state_dict()
        ssl, gin = (256, 256) if version == "4.0" else (768, 768)
        expect = [("emb_g.weight", (5, gin)), ("pre.weight", (192, ssl, 5)), ("pre.bias", (192,)),
                  ("emb_uv.weight", (2, 192)), ("enc_p.f0_emb.weight", (256, 192)), ("enc_p.proj.weight", (384, 192, 1)),
                  ("enc_p.enc_.attn_layers.5.emb_rel_k", (1, 9, 96)), ("enc_p.enc_.attn_layers.0.conv_o.weight", (192, 192, 1)),
                  ("enc_p.enc_.norm_layers_2.5.gamma", (192,)), ("enc_p.enc_.ffn_layers.0.conv_1.weight", (768, 192, 3)),
                  ("flow.flows.6.enc.in_layers.3.weight_v", (384, 192, 5)), ("flow.flows.0.enc.res_skip_layers.3.weight_v", (192, 192, 1)),
                  ("flow.flows.0.enc.cond_layer.weight_v", (4 * 384, gin, 1)), ("flow.flows.2.post.weight", (96, 192, 1)),
                  ("dec.m_source.l_linear.weight", (1, 9)), ("dec.conv_pre.weight_g", (512, 1, 1)),
                  ("dec.conv_pre.weight_v", (512, 192, 7)), ("dec.ups.0.weight_v", (512, 256, 16)),
                  ("dec.ups.4.weight_v", (32, 16, 4)), ("dec.noise_convs.0.weight", (256, 1, 128)),
                  ("dec.noise_convs.3.weight", (32, 1, 4)), ("dec.noise_convs.4.weight", (16, 1, 1)),
                  ("dec.resblocks.14.convs2.2.weight_v", (16, 16, 11)), ("dec.conv_post.weight_v", (1, 16, 7)),
                  ("dec.conv_post.bias", (1,)), ("dec.cond.weight", (512, gin, 1)),
                  ("enc_q.pre.weight", (192, 1025, 1)), ("enc_q.enc.in_layers.15.weight_v", (384, 192, 5)),
                  ("f0_decoder.prenet.weight", (192, 192, 3)), ("f0_decoder.f0_prenet.weight", (192, 1, 3)),
                  ("f0_decoder.decoder.self_attn_layers.5.conv_q.weight", (192, 192, 1)),
                  ("f0_decoder.decoder.norm_layers_1.5.beta", (192,)), ("f0_decoder.cond.weight", (192, gin, 1)),
                  ("f0_decoder.proj.weight", (1, 192, 1))]
        if version == "4.1":
            expect.append(("emb_vol.weight", (192, 1)))
        for key, shape in expect:
            check(key in sd and tuple(sd[key].shape) == shape, "%s key %s %s" % (version, key, shape))
        check("flow.flows.0.enc.in_layers.4.weight_v" not in sd and "flow.flows.1.pre.weight" not in sd,
              "%s: WN of 4 layers per coupling layer, flips carry no weights" % version)
        check("f0_decoder.decoder.self_attn_layers.0.emb_rel_k" not in sd and ("emb_vol.weight" in sd) == (version == "4.1"),
              "%s: no relative embeddings in the F0 decoder; emb_vol only with vol_embedding" % version)
        keys = list(sd)
        order = [k.split(".")[0] for k in keys]
        firsts = [o for i, o in enumerate(order) if i == 0 or order[i - 1] != o]
        want = ["emb_g"] + (["emb_vol"] if version == "4.1" else []) + ["pre", "enc_p", "dec", "enc_q", "flow",
                                                                        "f0_decoder", "emb_uv"]
        check(firsts == want, "%s: state_dict order %s" % (version, firsts))
        n_all, n_inf = S.count_params(net), S.count_params(net, ("enc_q.", "f0_decoder."))
        print("%s params: %d total, %d without enc_q, %d for inference" % (version, n_all,
              S.count_params(net, ("enc_q.",)), n_inf))
        check(n_all > n_inf > 0, "%s parameter counts" % version)
        del net, sd
    for bad in ({"use_depthwise_conv": True}, {"flow_share_parameter": True}, {"use_transformer_flow": True},
                {"vocoder_name": "nsf-snake-hifigan"}):
        try:
            S.SynthesizerTrn(S.make_config("4.1", SPEAKERS, **bad))
            check(False, "refuses %s" % bad)
        except NotImplementedError:
            check(True, "refuses %s" % bad)

    # 2. sine source: closed form 0.1 sin(2 pi (ini_h + cumsum(frac(h f0 / sr)))) in float64, noise-free
    sr, upp = 44100, 512
    fr = np.arange(40)
    f0 = (180 * 2 ** (0.4 * np.sin(fr / 7.0)) + 3.7 * fr).astype(np.float32)
    f0[15:21] = 0
    ini = torch.rand(1, 9, generator=torch.Generator().manual_seed(1))
    e = S.sovits_sine_source(torch.from_numpy(f0)[None], upp, sr, ini)[0].double().numpy()
    fs = np.repeat(f0.astype(np.float64), upp)
    h = np.arange(1, 10)
    inc = np.mod((fs[:, None].astype(np.float32) * h.astype(np.float32)).astype(np.float32) / np.float32(sr), 1.0)
    inc = inc.astype(np.float64)
    ini0 = ini[0].double().numpy().copy()
    ini0[0] = 0
    inc[0] += ini0
    expect = 0.1 * np.sin(2 * np.pi * np.cumsum(inc, 0))
    voiced = fs > 0
    err = np.abs(e[voiced] - expect[voiced]).max()
    check(err < 1e-4, "sine source == closed form over 9 harmonics with initial phases (max err %.2e)" % err)
    check(np.abs(e[~voiced]).max() == 0.0, "sine source silent when unvoiced and noise-free")
    check(np.abs(e[voiced, 0] - 0.1 * np.sin(2 * np.pi * np.cumsum(inc[:, 0])[voiced])).max() < 1e-4
          and abs(e[0, 0]) < 0.1 * 2 * np.pi * inc[0, 0] + 1e-6,
          "fundamental starts at phase 0")
    nz = torch.randn(1, 40 * upp, 9, generator=torch.Generator().manual_seed(2))
    en = S.sovits_sine_source(torch.from_numpy(f0)[None], upp, sr, ini, nz)[0].double().numpy()
    amp = np.where(voiced[:, None], 0.003, 0.1 / 3)
    check(np.abs(en - e - amp * nz[0].double().numpy()).max() < 1e-6, "noise amplitude 0.003 voiced, 0.1/3 unvoiced")
    up = torch.nn.Upsample(scale_factor=float(upp))(torch.from_numpy(f0)[None, None])[0, 0]
    check(torch.equal(up, torch.from_numpy(f0).repeat_interleave(upp)), "nn.Upsample(512) == repeat_interleave")

    # 3. glue against direct definitions
    fv = torch.tensor([0.0, 30.0, 50.0, 100.0, 220.0, 440.0, 1000.0, 1100.0, 3000.0])
    c = S.f0_to_coarse(fv)
    mel = 1127 * np.log(1 + fv.double().numpy() / 700)
    ref = np.where(mel > 0, (mel - S.F0_MEL_MIN) * 254 / (S.F0_MEL_MAX - S.F0_MEL_MIN) + 1, mel)
    ref = np.clip(np.floor(ref + 0.5), 1, 255).astype(np.int64)  # the 4.0 formula
    check(list(c.numpy()) == list(ref), "f0_to_coarse == 4.0 formula %s" % list(c.numpy()))
    check(int(c[2]) == 1 and int(c[7]) == 255 and int(c[0]) == 1, "coarse end points: 0 -> 1, 50 -> 1, 1100 -> 255")
    dense = torch.linspace(0, 1500, 200001)
    cd = S.f0_to_coarse(dense).numpy()
    md = 1127 * np.log(1 + dense.double().numpy() / 700)
    rd = np.clip(np.floor(np.where(md > 0, (md - S.F0_MEL_MIN) * 254 / (S.F0_MEL_MAX - S.F0_MEL_MIN) + 1, md) + 0.5), 1, 255)
    check(int((cd != rd).sum()) <= 3, "f0_to_coarse (float32, half to even) vs float64 4.0 formula: %d of 200001 differ"
          % int((cd != rd).sum()))
    u = torch.arange(5 * 3, dtype=torch.float32).view(3, 5)
    left = S.expand_units(u, 12, "left")
    direct = torch.stack([u[:, (i * 5) // 12] for i in range(12)], 1)
    check(torch.equal(left, direct), "expand_units left: frame i takes unit floor(i S / T)")
    near = S.expand_units(u, 12, "nearest")
    check(torch.equal(near, u[:, [int(np.floor(i * 5 / 12)) for i in range(12)]]), "expand_units nearest: floor(i S / T)")
    x = torch.randn(5000, generator=torch.Generator().manual_seed(3))
    v = S.volume(x, 512)
    xp = np.pad(x.numpy().astype(np.float64) ** 2, (256, 256), mode="reflect")
    vref = np.sqrt([xp[i * 512:(i + 1) * 512].mean() for i in range(5000 // 512)])
    check(v.shape == (9,) and np.abs(v.double().numpy() - vref).max() < 1e-6, "volume == RMS of reflect-padded hops")
    f0f, uvf = S.fill_unvoiced(np.array([0, 0, 200, 0, 0, 300, 0.0]), 512, 44100)
    check(list(uvf) == [0, 0, 1, 0, 0, 1, 0] and np.allclose(f0f, [200, 200, 200, 233.333, 266.667, 300, 300], atol=1e-3),
          "fill_unvoiced holds the ends and interpolates gaps %s" % list(np.round(f0f, 3)))

    # 4. flow: reverse undoes forward (mean-only coupling, 4 WN layers)
    torch.manual_seed(4)
    flow = MR.randomise(lambda: R.ResidualCouplingBlock(16, 32, 5, 1, 4, 8), 9)
    xz = torch.randn(1, 16, 23)
    gz = torch.randn(1, 8, 1)
    mask = torch.ones(1, 1, 23)
    with torch.no_grad():
        back = flow(flow(xz, mask, gz, reverse=False), mask, gz, reverse=True)
    check(float((back - xz).abs().max()) < 1e-5, "flow reverse(forward(x)) == x")

    # 5. formats: save -> strict reload -> identical audio; dependence on inputs
    spec = SMALL["41"]
    cfg = S.make_config(spec["version"], SPEAKERS[:3], **spec["model"])
    net = build(cfg, spec["seed"])
    fp16_values(net)
    d = os.path.join(out, "selfcheck41")
    os.makedirs(d, exist_ok=True)
    save_train(net, cfg, os.path.join(d, "G_100.pth"), 100)
    save_config(cfg, os.path.join(d, "config.json"))
    save_release(net, cfg, os.path.join(d, "G_100_release_half.pth"), half=True)
    n2, cpt, _ = load(os.path.join(d, "G_100.pth"))
    check(set(cpt) == {"model", "iteration", "optimizer", "learning_rate"} and cpt["iteration"] == 100
          and any(k.startswith("enc_q.") for k in cpt["model"]) and len(cpt["optimizer"]["state"]) == len(list(net.parameters()))
          and all(v.dtype == torch.float32 for v in cpt["model"].values()), "training G_*.pth layout")
    n3, cpt3, _ = load(os.path.join(d, "G_100_release_half.pth"))
    check(not any(k.startswith("enc_q.") for k in cpt3["model"]) and all(v.dtype == torch.float16 for v in cpt3["model"].values())
          and cpt3["optimizer"]["state"] == {}, "release file: no enc_q, fp16, fresh optimizer")
    T = 30
    g = torch.Generator().manual_seed(5)
    units = torch.randn(T, 48, generator=g).numpy()
    f0, uv = S.fill_unvoiced(sung_contour(T, 512, 44100, gap=(0.1, 0.2)), 512, 44100)
    vol = (0.1 * torch.rand(T, generator=g)).numpy()
    dr = draws(net, T, 6)
    gd = MR.Golden(os.path.join(d, "g"))
    outs = [run_case(m, gd, "a_", units, f0, uv, vol, 1, 0.4, dr) for m in (net, n2, n3)]
    check(torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2]) and outs[0].shape == (1, 1, T * 512),
          "reload (training and fp16 release): identical audio %s" % (tuple(outs[0].shape),))
    check(0.01 < float(outs[0].abs().max()) < 0.999, "audio neither silent nor saturated (peak %.3f)" % float(outs[0].abs().max()))
    alt = [run_case(net, gd, "b_", units, f0, uv, vol, 2, 0.4, dr),
           run_case(net, gd, "c_", units, f0, uv, vol * 3, 1, 0.4, dr),
           run_case(net, gd, "d_", units, f0, np.ones_like(uv), vol, 1, 0.4, dr),
           run_case(net, gd, "e_", units, f0, uv, vol, 1, 0.0, dr)]
    for o, what in zip(alt, ("speaker", "volume", "uv", "noise scale")):
        check(not torch.equal(o, outs[0]), "audio depends on the %s" % what)
    sd = dict(cpt["model"])
    sd.pop("dec.conv_post.bias")
    try:
        S.SynthesizerTrn(cfg).load_state_dict(sd, strict=True)
        check(False, "strict load rejects a missing key")
    except RuntimeError:
        check(True, "strict load rejects a missing key")
    print("selfcheck: %d failures, %.1f s" % (len(failures), time.time() - t0))
    return 1 if failures else 0


def time_reference(args):
    """--time: the reference's inference speed on a checkpoint, for bench/bench_sovits.c."""
    torch.set_num_threads(args.threads)
    net, _, cfg = load(args.outdir)
    T, g = args.frames, torch.Generator().manual_seed(11)
    units = torch.randn(T, cfg["model"]["ssl_dim"], generator=g).numpy()
    f0, uv = S.fill_unvoiced(sung_contour(T, net.hop, net.sr), net.hop, net.sr)
    vol = (0.05 + 0.1 * torch.rand(T, generator=g)).numpy() if net.vol_embedding else None
    dr = draws(net, T, 12)
    runs = []
    for r in range(args.runs + 1):
        t = time.time()
        run_case(net, None, "t_", units, f0, uv, vol, 0, 0.4, dr)
        if r > 0:
            runs.append(time.time() - t)
    print(json.dumps({"median_s": float(np.median(runs)), "runs_s": runs, "frames": T, "threads": args.threads,
                      "torch": torch.__version__, "checkpoint": os.path.basename(args.outdir)}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--selfcheck", action="store_true")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--clip")
    ap.add_argument("--data", default=os.environ.get("AVO_TEST_DATA") or "/work/shared/data")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--offset", type=float, default=1.0)
    ap.add_argument("--no-adam", dest="adam", action="store_false", help="fresh optimizer state (no moments)")
    ap.add_argument("--time", action="store_true", help="time the reference on the checkpoint OUTDIR")
    ap.add_argument("--frames", type=int, default=2584)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.abspath(args.outdir).startswith(repo + os.sep) and "test-tmp" not in args.outdir:
        raise SystemExit("OUTDIR must lie outside the repository (build test-tmp folders are allowed)")
    if args.time:
        sys.exit(time_reference(args))
    if args.selfcheck:
        sys.exit(selfcheck(args))
    if args.verify:
        sys.exit(verify(args))
    if args.small:
        write_small(args)
        return
    run_full(args)


if __name__ == "__main__":
    main()
