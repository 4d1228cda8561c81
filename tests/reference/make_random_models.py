#!/usr/bin/python3
"""Random-weight checkpoints in the upstream formats, golden inputs/outputs, and a self-check.

usage:
  make_random_models.py OUTDIR [--wav FILE] [--data DIR] [--seconds S] [--offset S] [--fp32]
      Builds RVC v2 40k and 48k synthesizers, RMVPE and HuBERT base at their real sizes with seeded
      random weights, saves rvc_v2_40k.pth, rvc_v2_48k.pth, rmvpe.pt, hubert_base.pt into OUTDIR, runs
      the conversion chain on S seconds of a real 16 kHz clip and writes golden tensors as raw
      little-endian float32 (OUTDIR/golden/NAME.f32) indexed by OUTDIR/golden/index.json.
      The clip is FILE (16-bit PCM WAV at 16 kHz), or else the first nus48e_*.flac under DIR/singing
      (DIR defaults to $AVO_TEST_DATA or /work/shared/data), decoded with sox into OUTDIR.
      All three are stored in fp16 like the published files (whose sizes, about 189 MB and 181 MB, are
      those of these parameter counts in fp16); --fp32 stores hubert_base.pt and rmvpe.pt in float32. Weights are rounded to fp16
      values before the golden run when stored in fp16 (RVC .pth files always are).
  make_random_models.py --verify OUTDIR
      Reloads the checkpoints of a full run (strict) and recomputes its golden outputs from its golden
      inputs; every output must agree to 1e-5 of its peak.
  make_random_models.py --selfcheck OUTDIR
      Checks that can fail (exit 1): parameter counts and key shapes of the real configs; save, reload
      with strict=True into fresh models and identical outputs (small configs, to keep it fast);
      strict loading rejects missing and unexpected keys; the RMVPE decoder on synthetic salience with
      known cents; the relative-position attention against a direct loop; the NSF sine source against
      a closed-form sine; the mel filterbank's unit areas; HuBERT's frame count.
OUTDIR must lie outside the repository (nothing here writes into it).
"""
import argparse
import collections
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import time
import wave

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rvc_models as R  # noqa: E402

# Published sizes (parameters). HuBERT base: 94.7M in fairseq's model card ("95M"); RMVPE E2E(4, 1, (2, 2)):
# about 90M; RVC v2 synthesizer: about 27.5M without enc_q (a 55 MB fp16 .pth), about 36.5M with it.
RANGES = {
    "hubert_base": (94.0e6, 95.5e6),
    "rmvpe": (89.0e6, 92.0e6),
    "rvc_v2_40k_infer": (27.0e6, 28.5e6),
    "rvc_v2_40k_with_enc_q": (36.0e6, 37.5e6),
    "rvc_v2_48k_infer": (28.0e6, 29.5e6),
    "rvc_v2_48k_with_enc_q": (37.0e6, 38.5e6),
}

SMALL_RVC = [1025, 32, 32, 32, 64, 2, 2, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
             [10, 10, 2, 2], 64, [16, 16, 4, 4], 4, 16, 40000]
SMALL_RMVPE = dict(n_blocks=1, n_gru=1, kernel_size=(2, 2), en_de_layers=5, inter_layers=1, in_channels=1,
                   en_out_channels=4)
SMALL_HUBERT = dict(encoder_layers=3, encoder_embed_dim=64, encoder_ffn_embed_dim=128, encoder_attention_heads=4,
                    final_dim=32)

failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


# ---- seeded random weights ------------------------------------------------------------------

def randomise(ctor, seed):
    """Builds ctor() under a fixed seed (default torch init), then moves norms, batch-norm statistics
    and weight-norm gains off their trivial values so every tensor influences the output."""
    torch.manual_seed(seed)
    model = ctor()
    g = torch.Generator().manual_seed(seed + 1)
    norms = (torch.nn.BatchNorm2d, torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, norms):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            if isinstance(m, R.FeatureExtractor):  # keep activations O(1) through 7 GELU convs
                for layer in m.conv_layers:
                    w = layer[0].weight
                    fan_in = w.shape[1] * w.shape[2]
                    w.copy_(torch.randn(w.shape, generator=g) * math.sqrt(2.0 / fan_in))
            if isinstance(m, R.SourceModuleHnNSF):  # let the sine reach the generator, not just the bias
                m.l_linear.weight.copy_(1 + 0.5 * torch.rand(1, 1, generator=g))
                m.l_linear.bias.copy_(0.05 * torch.randn(1, generator=g))
            if isinstance(m, R.ChannelLayerNorm):
                m.gamma.copy_(1 + 0.1 * torch.randn(m.gamma.shape, generator=g))
                m.beta.copy_(0.1 * torch.randn(m.beta.shape, generator=g))
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):
                p.mul_(1 + 0.1 * torch.rand(p.shape, generator=g))
    return model.eval()


def build_rvc(cfg, seed, with_enc_q=False):
    m = randomise(lambda: R.SynthesizerTrnMs768NSFsid(*cfg, with_enc_q=with_enc_q), seed)
    with torch.no_grad():  # RVC stores fp16: keep only values an fp16 file can hold
        for p in m.parameters():
            p.copy_(p.half().float())
    return m


def hubert_from_cfg(c):
    return R.HubertBase(dim=c["encoder_embed_dim"], layers=c["encoder_layers"], ffn=c["encoder_ffn_embed_dim"],
                        heads=c["encoder_attention_heads"], final_dim=c["final_dim"])


# ---- upstream checkpoint formats --------------------------------------------------------------

def save_rvc(model, cfg, path):
    """As RVC's extract_small_model/savee write it: fp16 weights without enc_q.*, config list, metadata."""
    weight = collections.OrderedDict((k, v.half()) for k, v in model.state_dict().items() if "enc_q" not in k)
    sr_name = {32000: "32k", 40000: "40k", 48000: "48k"}[cfg[-1]]
    torch.save({"weight": weight, "config": list(cfg), "info": "0epoch", "sr": sr_name, "f0": 1,
                "version": "v2"}, path)


def load_rvc(path):
    cpt = torch.load(path, map_location="cpu")
    cfg = list(cpt["config"])
    cfg[-3] = cpt["weight"]["emb_g.weight"].shape[0]  # RVC takes the speaker count from emb_g
    m = R.SynthesizerTrnMs768NSFsid(*cfg)
    m.load_state_dict({k: v.float() for k, v in cpt["weight"].items()}, strict=True)
    return m.eval(), cpt


def to_fp16_values(model):
    """Rounds float parameters and buffers to fp16-representable values (model stays float32)."""
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def half_state(model):
    return collections.OrderedDict((k, v.half() if v.is_floating_point() else v)
                                   for k, v in model.state_dict().items())


def save_hubert(model, cfg, path, fp16=False):
    torch.save({"model": half_state(model) if fp16 else model.state_dict(), "cfg": {"model": cfg, "task": {"_name": "hubert_pretraining",
                                                                             "sample_rate": 16000,
                                                                             "normalize": False}},
                "args": None}, path)


def load_hubert(path):
    cpt = torch.load(path, map_location="cpu")
    m = hubert_from_cfg(cpt["cfg"]["model"])
    m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in cpt["model"].items()}, strict=True)
    return m.eval()


def load_rmvpe(path, **kw):
    m = R.E2E(**kw)
    sd = torch.load(path, map_location="cpu")
    m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, strict=True)
    return m.eval()


# ---- golden files -----------------------------------------------------------------------------

class Golden:
    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.index = {"format": "raw little-endian float32, C order; ints are stored as exact floats",
                      "tensors": collections.OrderedDict()}

    def put(self, name, t, desc, dtype=None):
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        orig = dtype or str(a.dtype)
        a = np.ascontiguousarray(a, dtype="<f4")
        a.tofile(os.path.join(self.folder, name + ".f32"))
        self.index["tensors"][name] = {"file": name + ".f32", "shape": list(a.shape), "dtype": orig,
                                       "desc": desc}

    def finish(self, **extra):
        self.index.update(extra)
        with open(os.path.join(self.folder, "index.json"), "w") as f:
            json.dump(self.index, f, indent=1)


# ---- audio ------------------------------------------------------------------------------------

def read_wav16(path):
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getframerate() != 16000:
            raise SystemExit("%s: need 16-bit PCM WAV at 16 kHz" % path)
        n, ch = w.getnframes(), w.getnchannels()
        x = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    return x.reshape(-1, ch).mean(1)


def find_clip(outdir, data_dir):
    clips = sorted(glob.glob(os.path.join(data_dir, "singing", "nus48e_*.flac")))
    if not clips:
        raise SystemExit("no nus48e_*.flac under %s/singing; pass --wav" % data_dir)
    if not shutil.which("sox"):
        raise SystemExit("sox is needed to decode %s; pass --wav with a 16 kHz 16-bit WAV" % clips[0])
    wav = os.path.join(outdir, "input_16k.wav")
    subprocess.run(["sox", clips[0], "-r", "16000", "-c", "1", "-b", "16", wav], check=True)
    return wav, clips[0]


# ---- full mode: real sizes, checkpoints, golden chain --------------------------------------------

def run_full(args):
    out = os.path.abspath(args.outdir)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    src = args.wav
    if src is None:
        src, orig = find_clip(out, args.data)
    else:
        orig = src
    audio = read_wav16(src)
    a0 = int(args.offset * 16000)
    audio = audio[a0:a0 + int(args.seconds * 16000)]
    if len(audio) < 16000:
        raise SystemExit("clip too short")
    wav = torch.from_numpy(audio.copy())[None]
    gold = Golden(os.path.join(out, "golden"))
    gold.put("audio_16k", wav[0], "input clip, 16 kHz mono, [-1, 1]")
    models = {}

    t = time.time()
    hub = randomise(R.HubertBase, 1000)
    if args.fp16:
        to_fp16_values(hub)
    save_hubert(hub, R.hubert_cfg(), os.path.join(out, "hubert_base.pt"), args.fp16)
    taps = {}
    feats12 = hub.extract(wav, 12, taps)
    gold.put("hubert_conv_features", taps["conv_features"][0], "feature encoder output [T, 512]")
    gold.put("hubert_layer1", taps["layer1"][0], "after transformer layer 1 [T, 768]")
    gold.put("hubert_layer9", taps["layer9"][0], "after transformer layer 9 [T, 768]")
    gold.put("hubert_v1_feats", hub.final_proj(taps["layer9"])[0].detach(), "RVC v1 features: final_proj(layer 9) [T, 256]")
    gold.put("hubert_v2_feats", feats12[0], "RVC v2 features: layer 12 [T, 768]")
    models["hubert_base.pt"] = {"params": R.count_params(hub), "seconds": time.time() - t}

    t = time.time()
    rm = randomise(lambda: R.E2E(4, 1, (2, 2)), 2000)
    if args.fp16:
        to_fp16_values(rm)
    torch.save(half_state(rm) if args.fp16 else rm.state_dict(), os.path.join(out, "rmvpe.pt"))
    mel = R.RmvpeMel()(wav)
    sal = R.rmvpe_salience(rm, mel)
    f0, cents = R.decode_salience(sal[0].numpy(), 0.03)
    gold.put("rmvpe_mel", mel[0], "log-mel [128, T], T = N//160 + 1")
    gold.put("rmvpe_salience", sal[0], "sigmoid output [T, 360]")
    gold.put("rmvpe_cents", cents, "to_local_average_cents, threshold 0.03 [T]", "float64")
    gold.put("rmvpe_f0", f0, "decoded f0 in Hz, 0 = unvoiced [T]", "float64")
    models["rmvpe.pt"] = {"params": R.count_params(rm), "seconds": time.time() - t}

    # The RVC pipeline's glue: features at 50 Hz repeated to 100 Hz, p_len = N // 160 frames, cut to
    # the feature count when that is shorter (the pipeline's reflect padding usually prevents this).
    p_len = min(wav.shape[1] // 160, 2 * feats12.shape[1])
    phone = F.interpolate(feats12.transpose(1, 2), scale_factor=2).transpose(1, 2)[:, :p_len]
    cases = {"e2e": f0[:p_len]}
    tt = np.arange(p_len) / 100.0  # a sung contour with vibrato and an unvoiced gap
    contour = 220.0 * 2 ** (0.5 * np.sin(2 * np.pi * 0.7 * tt) + 0.03 * np.sin(2 * np.pi * 5.5 * tt))
    contour[(tt > 0.5) & (tt < 0.7)] = 0
    cases["contour"] = contour
    for sr_name, seed in (("40k", 3000), ("48k", 4000)):
        t = time.time()
        cfg = R.RVC_V2_CONFIGS[sr_name]
        net = build_rvc(cfg, seed)
        path = os.path.join(out, "rvc_v2_%s.pth" % sr_name)
        save_rvc(net, cfg, path)
        upp = int(np.prod(cfg[12]))
        g = torch.Generator().manual_seed(seed + 7)
        z_noise = torch.randn(1, cfg[2], p_len, generator=g)
        src_noise = torch.randn(1, p_len * upp, 1, generator=g)
        pre = "rvc%s_" % sr_name
        gold.put(pre + "z_noise", z_noise[0], "standard normal draws of the prior sample [192, T]")
        gold.put(pre + "src_noise", src_noise[0, :, 0], "standard normal draws of the NSF noise [T*upp]")
        for case, f in cases.items():
            pitch = torch.from_numpy(R.rvc_pitch_coarse(f))[None]
            nsff0 = torch.from_numpy(np.asarray(f, dtype=np.float32))[None]
            taps = {}
            o, _ = net.infer(phone, torch.tensor([p_len]), pitch, nsff0, torch.tensor([0]), z_noise, src_noise, taps)
            p = pre + case + "_"
            gold.put(p + "pitch", pitch[0], "coarse pitch 1..255 [T]", "int64")
            gold.put(p + "nsff0", nsff0[0], "f0 Hz [T]")
            for k in ("m_p", "logs_p", "z_p", "z"):
                gold.put(p + k, taps[k][0], k + " [192, T]")
            gold.put(p + "har_source", taps["har_source"][0, 0], "tanh(l_linear(sine source)) [T*upp]")
            gold.put(p + "audio", o[0, 0], "synthesizer output at %d Hz [T*upp]" % cfg[-1])
        if sr_name == "40k":
            gold.put("rvc_phone", phone[0], "synthesizer input: v2 features repeated x2 [T, 768]")
        models[os.path.basename(path)] = {"params": R.count_params(net), "seconds": time.time() - t,
                                          "config": cfg}
    gold.finish(fp16_hubert_rmvpe=bool(args.fp16), source_clip=os.path.basename(orig), offset_s=args.offset, seconds=len(audio) / 16000.0,
                p_len=p_len, sid=0, rmvpe_threshold=0.03, checkpoints=models,
                cases={"e2e": "f0 from the random RMVPE, as the pipeline would use it",
                       "contour": "synthetic sung f0 with an unvoiced gap 0.5-0.7 s"})
    for k, v in models.items():
        print("%-18s %10d params  %.1f s" % (k, v["params"], v["seconds"]))
    print("golden tensors: %d in %s" % (len(gold.index["tensors"]), gold.folder))


# ---- self-check --------------------------------------------------------------------------------

def direct_relpos_attention(att, x):
    """O(T^2) loop version of RelPosMultiHeadAttention (no mask), for cross-checking."""
    B, C, T = x.shape
    H, D, W = att.n_heads, att.k_channels, att.window_size
    q = att.conv_q(x).view(B, H, D, T) / math.sqrt(D)
    k = att.conv_k(x).view(B, H, D, T)
    v = att.conv_v(x).view(B, H, D, T)
    ek, ev = att.emb_rel_k[0], att.emb_rel_v[0]
    out = torch.zeros(B, H, D, T)
    for i in range(T):
        s = torch.zeros(B, H, T)
        for j in range(T):
            s[:, :, j] = (q[:, :, :, i] * k[:, :, :, j]).sum(-1)
            if abs(j - i) <= W:
                s[:, :, j] += q[:, :, :, i] @ ek[j - i + W]
        p = torch.softmax(s, -1)
        for j in range(T):
            out[:, :, :, i] += p[:, :, j, None] * v[:, :, :, j]
            if abs(j - i) <= W:
                out[:, :, :, i] += p[:, :, j, None] * ev[j - i + W]
    return att.conv_o(out.reshape(B, C, T))


def selfcheck(args):
    out = os.path.abspath(args.outdir)
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    t0 = time.time()

    # 1. real configs: parameter counts and key shapes taken from the upstream checkpoints
    hub = R.HubertBase()
    n = R.count_params(hub)
    check(RANGES["hubert_base"][0] <= n <= RANGES["hubert_base"][1], "HuBERT base params %d" % n)
    sd = hub.state_dict()
    for key, shape in (("feature_extractor.conv_layers.0.0.weight", (512, 1, 10)),
                       ("feature_extractor.conv_layers.0.2.weight", (512,)),
                       ("feature_extractor.conv_layers.6.0.weight", (512, 512, 2)),
                       ("post_extract_proj.weight", (768, 512)), ("mask_emb", (768,)),
                       ("encoder.pos_conv.0.weight_g", (1, 1, 128)), ("encoder.pos_conv.0.weight_v", (768, 48, 128)),
                       ("encoder.layers.0.self_attn.k_proj.weight", (768, 768)),
                       ("encoder.layers.11.fc1.weight", (3072, 768)), ("encoder.layers.11.final_layer_norm.bias", (768,)),
                       ("encoder.layer_norm.weight", (768,)), ("layer_norm.weight", (512,)),
                       ("final_proj.weight", (256, 768)), ("label_embs_concat", (504, 256))):
        check(key in sd and tuple(sd[key].shape) == shape, "hubert key %s %s" % (key, shape))
    # mask_emb, label_embs_concat, 7 convs + GroupNorm (9), layer_norm (2), post_extract_proj (2),
    # pos_conv bias/g/v (3), 12 layers x 16, encoder.layer_norm (2), final_proj (2): 214
    check(len(sd) == 214, "hubert state_dict has 214 entries (got %d)" % len(sd))
    del hub, sd

    rm = R.E2E(4, 1, (2, 2))
    n = R.count_params(rm)
    check(RANGES["rmvpe"][0] <= n <= RANGES["rmvpe"][1], "RMVPE params %d" % n)
    sd = rm.state_dict()
    for key, shape in (("unet.encoder.bn.weight", (1,)),
                       ("unet.encoder.layers.0.conv.0.conv.0.weight", (16, 1, 3, 3)),
                       ("unet.encoder.layers.0.conv.0.shortcut.weight", (16, 1, 1, 1)),
                       ("unet.encoder.layers.4.conv.3.conv.4.running_var", (256,)),
                       ("unet.intermediate.layers.0.conv.0.shortcut.weight", (512, 256, 1, 1)),
                       ("unet.intermediate.layers.3.conv.3.conv.3.weight", (512, 512, 3, 3)),
                       ("unet.decoder.layers.0.conv1.0.weight", (512, 256, 3, 3)),
                       ("unet.decoder.layers.0.conv2.0.conv.0.weight", (256, 512, 3, 3)),
                       ("unet.decoder.layers.4.conv2.3.conv.4.num_batches_tracked", ()),
                       ("cnn.weight", (3, 16, 3, 3)), ("fc.0.gru.weight_ih_l0", (768, 384)),
                       ("fc.0.gru.weight_hh_l0_reverse", (768, 256)), ("fc.1.weight", (360, 512))):
        check(key in sd and tuple(sd[key].shape) == shape, "rmvpe key %s %s" % (key, shape))
    del rm, sd

    for sr_name in ("40k", "48k"):
        cfg = R.RVC_V2_CONFIGS[sr_name]
        net = R.SynthesizerTrnMs768NSFsid(*cfg, with_enc_q=True)
        n_all, n_inf = R.count_params(net), R.count_params(net, "enc_q")
        lo, hi = RANGES["rvc_v2_%s_infer" % sr_name]
        check(lo <= n_inf <= hi, "RVC v2 %s params without enc_q %d" % (sr_name, n_inf))
        lo, hi = RANGES["rvc_v2_%s_with_enc_q" % sr_name]
        check(lo <= n_all <= hi, "RVC v2 %s params with enc_q %d" % (sr_name, n_all))
        sd = net.state_dict()
        s0 = int(np.prod(cfg[12][1:]))
        for key, shape in (("enc_p.emb_phone.weight", (192, 768)), ("enc_p.emb_pitch.weight", (256, 192)),
                           ("enc_p.encoder.attn_layers.5.emb_rel_k", (1, 21, 96)),
                           ("enc_p.encoder.attn_layers.0.conv_q.weight", (192, 192, 1)),
                           ("enc_p.encoder.norm_layers_1.0.gamma", (192,)),
                           ("enc_p.encoder.ffn_layers.5.conv_1.weight", (768, 192, 3)),
                           ("enc_p.proj.weight", (384, 192, 1)),
                           ("flow.flows.6.enc.in_layers.2.weight_v", (384, 192, 5)),
                           ("flow.flows.0.enc.cond_layer.weight_g", (1152, 1, 1)),
                           ("flow.flows.0.enc.res_skip_layers.2.weight_v", (192, 192, 1)),
                           ("flow.flows.0.post.weight", (96, 192, 1)),
                           ("dec.m_source.l_linear.weight", (1, 1)), ("dec.conv_pre.weight", (512, 192, 7)),
                           ("dec.ups.0.weight_g", (512, 1, 1)), ("dec.ups.0.weight_v", (512, 256, cfg[14][0])),
                           ("dec.noise_convs.0.weight", (256, 1, 2 * s0)), ("dec.noise_convs.3.weight", (32, 1, 1)),
                           ("dec.resblocks.11.convs2.2.weight_v", (32, 32, 11)),
                           ("dec.conv_post.weight", (1, 32, 7)), ("dec.cond.weight", (512, 256, 1)),
                           ("emb_g.weight", (109, 256)), ("enc_q.enc.in_layers.15.weight_v", (384, 192, 5)),
                           ("enc_q.pre.weight", (192, 1025, 1))):
            check(key in sd and tuple(sd[key].shape) == shape, "rvc %s key %s %s" % (sr_name, key, shape))
        check("dec.conv_post.bias" not in sd and "flow.flows.1.weight" not in sd,
              "rvc %s: no conv_post bias, Flip has no weights" % sr_name)
        del net, sd
    print("real-size checks: %.1f s" % (time.time() - t0))

    # 2. save -> strict reload -> identical outputs (small configs)
    t = time.time()
    fs = 16000
    tt = np.arange(fs) / fs
    audio = (0.3 * np.sin(2 * np.pi * 220 * tt) + 0.1 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32)
    wav = torch.from_numpy(audio)[None]

    hcfg = dict(R.hubert_cfg(), **SMALL_HUBERT)
    hub = randomise(lambda: hubert_from_cfg(hcfg), 11)
    path = os.path.join(out, "hubert_small.pt")
    save_hubert(hub, hcfg, path)
    cpt = torch.load(path, map_location="cpu")
    check(set(cpt) == {"model", "cfg", "args"} and "encoder.pos_conv.0.weight_g" in cpt["model"],
          "hubert checkpoint layout {model, cfg, args}")
    hub2 = load_hubert(path)
    a, b = hub.extract(wav, 3), hub2.extract(wav, 3)
    check(torch.equal(a, b), "hubert reload: identical layer-3 features")
    n_frames = (len(audio) - 400) // 320 + 1
    check(a.shape == (1, n_frames, 64), "hubert frames %s == %d" % (tuple(a.shape), n_frames))
    sd = dict(cpt["model"])
    sd.pop("label_embs_concat")
    try:
        hubert_from_cfg(hcfg).load_state_dict(sd, strict=True)
        check(False, "strict load rejects a missing key")
    except RuntimeError:
        check(True, "strict load rejects a missing key")

    rm = randomise(lambda: R.E2E(**SMALL_RMVPE), 12)
    path = os.path.join(out, "rmvpe_small.pt")
    torch.save(rm.state_dict(), path)
    rm2 = load_rmvpe(path, **SMALL_RMVPE)
    mel = R.RmvpeMel()(wav)
    check(mel.shape == (1, 128, len(audio) // 160 + 1), "rmvpe mel frames %s" % (tuple(mel.shape),))
    s1, s2 = R.rmvpe_salience(rm, mel), R.rmvpe_salience(rm2, mel)
    check(torch.equal(s1, s2) and s1.shape == (1, mel.shape[2], 360), "rmvpe reload: identical salience")
    to_fp16_values(rm)
    torch.save(half_state(rm), path)
    s3 = R.rmvpe_salience(load_rmvpe(path, **SMALL_RMVPE), mel)
    check(torch.equal(R.rmvpe_salience(rm, mel), s3) and not torch.equal(s1, s3),
          "rmvpe fp16 file: reload identical to the rounded model")
    sd = dict(torch.load(path))
    sd["extra.weight"] = torch.zeros(1)
    try:
        R.E2E(**SMALL_RMVPE).load_state_dict(sd, strict=True)
        check(False, "strict load rejects an unexpected key")
    except RuntimeError:
        check(True, "strict load rejects an unexpected key")

    net = build_rvc(SMALL_RVC, 13)
    path = os.path.join(out, "rvc_small.pth")
    save_rvc(net, SMALL_RVC, path)
    net2, cpt = load_rvc(path)
    check(set(cpt) == {"weight", "config", "info", "sr", "f0", "version"} and cpt["version"] == "v2"
          and cpt["f0"] == 1 and cpt["sr"] == "40k" and not any("enc_q" in k for k in cpt["weight"])
          and all(v.dtype == torch.float16 for v in cpt["weight"].values()), "rvc .pth layout, fp16, no enc_q")
    T = 60
    g = torch.Generator().manual_seed(5)
    phone = torch.randn(1, T, 768, generator=g)
    f0 = 200 * 2 ** (np.sin(np.arange(T) / 9.0) / 3)
    f0[20:26] = 0
    pitch = torch.from_numpy(R.rvc_pitch_coarse(f0))[None]
    nsff0 = torch.from_numpy(f0.astype(np.float32))[None]
    zn = torch.randn(1, 32, T, generator=g)
    sn = torch.randn(1, T * 400, 1, generator=g)
    lengths, sid = torch.tensor([T]), torch.tensor([2])
    o1, _ = net.infer(phone, lengths, pitch, nsff0, sid, zn, sn)
    o2, _ = net2.infer(phone, lengths, pitch, nsff0, sid, zn, sn)
    check(torch.equal(o1, o2) and o1.shape == (1, 1, T * 400), "rvc reload: identical audio %s" % (tuple(o1.shape),))
    o3, _ = net.infer(phone, lengths, pitch, nsff0, torch.tensor([1]), zn, sn)
    check(not torch.equal(o1, o3), "rvc output depends on the speaker id")
    # padding frames beyond phone_lengths must not change the valid part of the prior
    short = torch.tensor([T - 10])
    ta, tb = {}, {}
    net.infer(phone, short, pitch, nsff0, sid, zn, sn, ta)
    net.infer(phone[:, :T - 10], short, pitch[:, :T - 10], nsff0[:, :T - 10], sid, zn[:, :, :T - 10],
              sn[:, :(T - 10) * 400], tb)
    check(torch.allclose(ta["m_p"][:, :, :T - 10], tb["m_p"], atol=1e-5), "text encoder masks padded frames")
    check(float(ta["m_p"][:, :, T - 10:].abs().max()) == 0.0, "prior is zero beyond the length")
    print("reload checks: %.1f s" % (time.time() - t))

    # 3. RMVPE decoder on synthetic salience with known cents
    c_true = np.array([5007.3, 3333.3, 2411.0, 8500.0, 6000.0])
    bins = R.RMVPE_CENTS
    sal = np.exp(-0.5 * ((bins[None, :] - c_true[:, None]) / 25.0) ** 2).astype(np.float32)
    sal[4] *= 0.02  # peak 0.02 <= 0.03: unvoiced
    f0, cents = R.decode_salience(sal, 0.03)
    for i in range(4):
        check(abs(cents[i] - c_true[i]) < 1.0, "rmvpe decode: %.3f cents vs %.1f" % (cents[i], c_true[i]))
        hz = 10 * 2 ** (c_true[i] / 1200)
        check(abs(f0[i] - hz) / hz < 1e-3, "rmvpe decode: %.3f Hz vs %.3f" % (f0[i], hz))
    check(f0[4] == 0 and cents[4] == 0, "rmvpe decode: peak below 0.03 is unvoiced")
    one = np.zeros((2, 360), np.float32)
    one[0, 0] = 0.9  # lone peak at the first bin: the zero padding must not bias it
    one[1, 100], one[1, 101] = 0.5, 0.5
    f0, cents = R.decode_salience(one, 0.03)
    check(abs(cents[0] - bins[0]) < 1e-6, "rmvpe decode: edge bin gives its own cents")
    check(abs(cents[1] - (bins[100] + 10)) < 1e-6, "rmvpe decode: two equal bins give their midpoint")

    # 4. relative-position attention against a direct loop; index helpers against their definitions
    torch.manual_seed(3)
    att = R.RelPosMultiHeadAttention(16, 16, 2, window_size=3).eval()
    x = torch.randn(1, 16, 9)
    with torch.no_grad():
        ref = direct_relpos_attention(att, x)
        got = att(x, torch.ones(1, 1, 9, 9))
    check(torch.allclose(ref, got, atol=1e-5), "relative attention == direct loop (max %.2e)"
          % float((ref - got).abs().max()))
    y = torch.randn(1, 1, 5, 9)
    ra = R.rel_to_abs(y)
    check(all(float(ra[0, 0, i, j]) == float(y[0, 0, i, j - i + 4]) for i in range(5) for j in range(5)),
          "rel_to_abs indexing")
    y = torch.randn(1, 1, 5, 5)
    ar = R.abs_to_rel(y)
    ok = True
    for i in range(5):
        for r in range(9):
            j = r + i - 4
            ok &= float(ar[0, 0, i, r]) == (float(y[0, 0, i, j]) if 0 <= j < 5 else 0.0)
    check(ok, "abs_to_rel indexing")

    # 5. NSF sine source: a steady 200 Hz frame track gives 0.1 sin(2 pi 200 (n+1) / sr) when voiced
    upp, sr = 400, 40000
    f0 = torch.full((1, 50), 200.0)
    f0[0, 30:35] = 0
    e = R.sine_excitation(f0, upp, sr)[0, :, 0].double().numpy()
    nn_ = np.arange(50 * upp)
    expect = 0.1 * np.sin(2 * np.pi * 200.0 * (nn_ + 1) / sr)
    voiced = np.ones(50 * upp, bool)
    voiced[30 * upp:35 * upp] = False
    err = np.abs(e[voiced] - expect[voiced]).max()
    check(err < 2e-5, "sine source matches closed form (max err %.2e)" % err)
    check(np.abs(e[~voiced]).max() == 0.0, "sine source silent when unvoiced and noise-free")

    # The wrap bookkeeping only adds integers to the phase, so for any f0 track the source must equal
    # 0.1 sin(2 pi cumsum(frac(f0[n // upp] / sr))) computed in float64.
    fr = np.arange(60)
    f0v = 180 * 2 ** (0.4 * np.sin(fr / 7.0)) + 3.7 * fr
    f0v[25:31] = 0
    e = R.sine_excitation(torch.tensor(f0v, dtype=torch.float32)[None], upp, sr)[0, :, 0].double().numpy()
    inc = np.repeat(np.mod(f0v.astype(np.float32).astype(np.float64) / sr, 1.0), upp)
    expect = 0.1 * np.sin(2 * np.pi * np.cumsum(inc))
    voiced = np.repeat(f0v > 0, upp)
    err = np.abs(e[voiced] - expect[voiced]).max()
    check(err < 1e-4, "sine source follows the float64 phase of a varying f0 (max err %.2e)" % err)

    # 6. mel filterbank: slaney-normalised triangles have unit area in Hz
    fb = R.mel_filterbank_htk(16000, 1024, 128, 30.0, 8000.0).astype(np.float64)
    area = fb.sum(1) * (16000 / 1024)
    check(np.all(np.abs(area[40:] - 1) < 0.05), "mel filters 40..127 have unit area (worst %.3f)"
          % float(np.abs(area[40:] - 1).max()))
    peak_hz = fb.argmax(1) * 16000 / 1024
    check(np.all(np.diff(peak_hz) >= 0) and peak_hz[-1] > 7500, "mel filter peaks rise to 8 kHz")

    # 6b. mel front end against a numpy DFT of reflect-padded, periodic-Hann-windowed frames
    x = np.random.RandomState(4).randn(4000).astype(np.float64) * 0.1
    mel_t = R.RmvpeMel()(torch.from_numpy(x.astype(np.float32))[None])[0].double().numpy()
    xp = np.pad(x, (512, 512), mode="reflect")
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    ok_mel = mel_t.shape == (128, 4000 // 160 + 1)
    worst = 0.0
    for k in (0, 1, 12, mel_t.shape[1] - 1):
        mag = np.abs(np.fft.rfft(xp[k * 160:k * 160 + 1024] * win))
        ref_col = np.log(np.maximum(fb @ mag, 1e-5))
        worst = max(worst, float(np.abs(ref_col - mel_t[:, k]).max()))
    check(ok_mel and worst < 1e-3, "log-mel == numpy DFT reference (max %.2e)" % worst)

    # 6c. HuBERT post-LN layer against torch.nn.TransformerEncoderLayer with the same weights
    torch.manual_seed(8)
    mine = R.EncoderLayer(64, 128, 4).eval()
    ref_layer = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, activation="gelu", batch_first=True,
                                                 norm_first=False).eval()
    with torch.no_grad():
        a = mine.self_attn
        ref_layer.self_attn.in_proj_weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        ref_layer.self_attn.in_proj_bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        ref_layer.self_attn.out_proj.weight.copy_(a.out_proj.weight)
        ref_layer.self_attn.out_proj.bias.copy_(a.out_proj.bias)
        for dst, src_ in ((ref_layer.linear1, mine.fc1), (ref_layer.linear2, mine.fc2),
                          (ref_layer.norm1, mine.self_attn_layer_norm), (ref_layer.norm2, mine.final_layer_norm)):
            dst.weight.copy_(src_.weight + 0.1 * torch.randn(src_.weight.shape))
            src_.weight.copy_(dst.weight)
            dst.bias.copy_(src_.bias + 0.1 * torch.randn(src_.bias.shape))
            src_.bias.copy_(dst.bias)
        x = torch.randn(2, 17, 64)
        d = float((mine(x) - ref_layer(x)).abs().max())
    check(d < 1e-5, "HuBERT layer == torch TransformerEncoderLayer (max %.2e)" % d)

    # 7. pitch coarse mapping: 50 Hz -> 1, 1100 Hz -> 255, 0 -> 1
    pc = R.rvc_pitch_coarse(np.array([0.0, 50.0, 1100.0, 2000.0]))
    check(list(pc) == [1, 1, 255, 255], "coarse pitch end points %s" % list(pc))

    print("selfcheck: %d failures, %.1f s" % (len(failures), time.time() - t0))
    return 1 if failures else 0


def read_golden(folder):
    ix = json.load(open(os.path.join(folder, "index.json")))
    def get(name):
        e = ix["tensors"][name]
        return torch.from_numpy(np.fromfile(os.path.join(folder, e["file"]), "<f4").reshape(e["shape"]))
    return ix, get


def verify(args):
    """Reloads the checkpoints of a full run from OUTDIR (strict) and recomputes every golden output
    from the golden inputs: the files alone must reproduce the golden set (to 1e-5 of each tensor's
    peak, since a different thread count may change summation order)."""

    def same(a, b, what):
        d = float((a - b).abs().max()) / max(float(b.abs().max()), 1e-12)
        check(a.shape == b.shape and d <= 1e-5, "verify: %s (max rel diff %.1e)" % (what, d))

    out = os.path.abspath(args.outdir)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))  # as run_full; other counts reorder sums
    ix, get = read_golden(os.path.join(out, "golden"))
    wav = get("audio_16k")[None]
    hub = load_hubert(os.path.join(out, "hubert_base.pt"))
    taps = {}
    f12 = hub.extract(wav, 12, taps)
    same(f12[0], get("hubert_v2_feats"), "hubert layer-12 features")
    same(hub.final_proj(taps["layer9"])[0].detach(), get("hubert_v1_feats"), "hubert v1 features")
    rm = load_rmvpe(os.path.join(out, "rmvpe.pt"))
    sal = R.rmvpe_salience(rm, R.RmvpeMel()(wav))
    same(sal[0], get("rmvpe_salience"), "rmvpe salience")
    f0, _ = R.decode_salience(sal[0].numpy(), ix["rmvpe_threshold"])
    same(torch.from_numpy(f0.astype(np.float32)), get("rmvpe_f0"), "rmvpe f0")
    phone = get("rvc_phone")[None]
    T = phone.shape[1]
    for sr_name in ("40k", "48k"):
        net, _ = load_rvc(os.path.join(out, "rvc_v2_%s.pth" % sr_name))
        p = "rvc%s_" % sr_name
        zn, sn = get(p + "z_noise")[None], get(p + "src_noise")[None, :, None]
        for case in ("e2e", "contour"):
            q = p + case + "_"
            o, _ = net.infer(phone, torch.tensor([T]), get(q + "pitch").long()[None], get(q + "nsff0")[None],
                             torch.tensor([ix["sid"]]), zn, sn)
            same(o[0, 0], get(q + "audio"), "%s %s audio" % (sr_name, case))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--selfcheck", action="store_true")
    ap.add_argument("--verify", action="store_true", help="reload a full run's checkpoints and recompute its golden set")
    ap.add_argument("--wav")
    ap.add_argument("--data", default=os.environ.get("AVO_TEST_DATA") or "/work/shared/data")
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--offset", type=float, default=2.0)
    ap.add_argument("--fp32", dest="fp16", action="store_false",
                    help="store hubert_base.pt and rmvpe.pt in float32 (default fp16, like the published files)")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.abspath(args.outdir).startswith(repo + os.sep) and "test-tmp" not in args.outdir:
        raise SystemExit("OUTDIR must lie outside the repository (build test-tmp folders are allowed)")
    if args.selfcheck:
        sys.exit(selfcheck(args))
    if args.verify:
        sys.exit(verify(args))
    run_full(args)


if __name__ == "__main__":
    main()
