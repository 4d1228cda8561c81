#!/usr/bin/python3
"""Golden data for tests/unit/test_rvc.c, and the PyTorch timing used by bench/bench_rvc.c.

usage:
  rvc_golden.py OUTDIR [--data DIR]
      Writes three SMALL random RVC voice models in RVC's .pth format (fp16 weights without enc_q,
      "config" of 18 entries, "sr", "f0", "version", "info") and their intermediates on 1 s of
      input, all as raw little-endian float32 files indexed by OUTDIR/golden.json:
        v2     SynthesizerTrnMs768NSFsid: v2 features, f0, NSF decoder (3 stages 4,4,2; ResBlock1)
        v1     SynthesizerTrnMs256NSFsid: v1 features, f0, NSF decoder (4 stages 5,2,2,2)
        nono   SynthesizerTrnMs256NSFsid_nono: v1 features, no f0, plain HiFi-GAN (ResBlock2)
      The upsampling is shortened (hop 32/40 samples, sample rate = 100 * hop) so the test is fast;
      everything else is the real structure at reduced width. Inputs: content features made from
      1 s of real singing (/work/shared/data/singing, decoded with sox): log spectra at 50 frames/s
      through a fixed random projection, repeated x2 as the RVC pipeline does; f0 from a plain
      autocorrelation tracker on the same audio (unvoiced frames 0). Also bad checkpoints
      (bad_*.pth) for the error paths. The reference runs in float32 like RVC.
      If torch is missing, OUTDIR/TORCH_MISSING is written and the exit code is 0.
  rvc_golden.py --time MODEL.pth FRAMES RUNS
      Times SynthesizerTrnMs768NSFsid.infer of MODEL (a v2 f0 model, e.g. from make_random_models.py)
      on FRAMES frames of random input with 2 torch threads; prints one JSON line
      {"frames", "runs", "seconds": [...], "median_s"}.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.nn.utils import weight_norm
except ImportError:
    if len(sys.argv) > 1 and sys.argv[1] != "--time":
        os.makedirs(sys.argv[1], exist_ok=True)
        open(os.path.join(sys.argv[1], "TORCH_MISSING"), "w").write("python3-torch is not installed\n")
        sys.exit(0)
    raise

sys.path.insert(0, HERE)
import make_random_models as M  # noqa: E402
import rvc_models as R  # noqa: E402

torch.set_num_threads(1)

# 18-entry configs: spec_channels, segment_size, inter, hidden, filter, heads, layers, kernel, p_dropout,
# resblock, resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates, upsample_initial_channel,
# upsample_kernel_sizes, spk_embed_dim, gin_channels, sr
CONFIGS = {
    "v2": [1025, 32, 16, 32, 64, 2, 2, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
           [4, 4, 2], 32, [8, 8, 4], 4, 16, 3200],
    "v1": [1025, 32, 16, 24, 48, 2, 2, 3, 0, "1", [3, 5], [[1, 3, 5], [1, 3, 5]],
           [5, 2, 2, 2], 32, [9, 4, 4, 4], 3, 8, 4000],
    "nono": [1025, 32, 16, 32, 64, 4, 2, 5, 0, "2", [3, 5], [[1, 3], [1, 2]],
             [4, 4, 2], 32, [8, 8, 4], 2, 16, 3200],
}
VERSION = {"v2": "v2", "v1": "v1", "nono": "v1"}
F0 = {"v2": 1, "v1": 1, "nono": 0}
FRAMES = 100  # 1 s at 100 frames/s


class TextEncoder(R.TextEncoder768):
    """enc_p of RVC v1/v2 with or without the pitch embedding (TextEncoder256/768, f0=True/False)."""

    def __init__(self, phone_dim, f0, *args):
        super().__init__(*args)
        self.emb_phone = nn.Linear(phone_dim, self.hidden)
        if not f0:
            del self.emb_pitch

    def forward(self, phone, pitch, lengths):
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden), 0.1).transpose(1, 2)
        mask = R.length_mask(lengths, x.shape[2])
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, mask


class ResBlock2(nn.Module):
    """HiFi-GAN resblock type 2: one dilated conv per dilation with a residual add."""

    def __init__(self, channels, kernel_size, dilations):
        super().__init__()
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=R.same_padding(kernel_size, d))) for d in dilations])

    def forward(self, x):
        for c in self.convs:
            x = x + c(F.leaky_relu(x, R.LRELU_SLOPE))
        return x


class Generator(nn.Module):
    """The plain HiFi-GAN decoder of the no-f0 models (models.Generator): no source, no noise_convs."""

    def __init__(self, initial_channel, resblock, kernels, dilations, rates, upsample_initial_channel, up_kernels,
                 gin_channels):
        super().__init__()
        self.num_kernels = len(kernels)
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(rates, up_kernels)):
            self.ups.append(weight_norm(nn.ConvTranspose1d(upsample_initial_channel // 2 ** i,
                                                           upsample_initial_channel // 2 ** (i + 1), k, u,
                                                           padding=(k - u) // 2)))
        block = R.ResBlock1 if resblock == "1" else ResBlock2
        self.resblocks = nn.ModuleList()
        for i in range(len(rates)):
            ch = upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(kernels, dilations):
                self.resblocks.append(block(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x, g):
        x = self.conv_pre(x) + self.cond(g)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, R.LRELU_SLOPE))
            xs = 0
            for j in range(self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


def build(name, seed):
    cfg = CONFIGS[name]
    phone_dim = 768 if VERSION[name] == "v2" else 256
    f0 = F0[name]

    def ctor():
        net = R.SynthesizerTrnMs768NSFsid(*cfg) if cfg[9] == "1" else None
        if net is None:  # the reference asserts resblock "1"; build with it, then swap the decoder
            c1 = list(cfg)
            c1[9] = "1"
            net = R.SynthesizerTrnMs768NSFsid(*c1)
        net.enc_p = TextEncoder(phone_dim, f0, cfg[2], cfg[3], cfg[4], cfg[5], cfg[6], cfg[7])
        if not f0:
            net.dec = Generator(cfg[2], cfg[9], cfg[10], cfg[11], cfg[12], cfg[13], cfg[14], cfg[16])
        return net

    net = M.randomise(ctor, seed)
    with torch.no_grad():
        for p in net.parameters():  # RVC stores fp16: keep only values an fp16 file can hold
            p.copy_(p.half().float())
    return net


def save(net, name, path, **changes):
    cfg = list(CONFIGS[name])
    weight = {k: v.half() for k, v in net.state_dict().items() if "enc_q" not in k}
    ckpt = {"weight": weight, "config": cfg, "info": "0epoch", "sr": "%gk" % (cfg[-1] / 1000.0),
            "f0": F0[name], "version": VERSION[name]}
    ckpt.update(changes)
    torch.save(ckpt, path)
    return ckpt


@torch.no_grad()
def infer(net, name, phone, pitch, nsff0, sid, z_noise, src_noise):
    """RVC's infer with the two random draws given; returns the audio and the intermediates."""
    taps = {}
    T = phone.shape[1]
    lengths = torch.tensor([T])
    g = net.emb_g(torch.tensor([sid])).unsqueeze(-1)
    if F0[name]:
        o, _ = net.infer(phone, lengths, pitch, nsff0, torch.tensor([sid]), z_noise, src_noise, taps)
        return o, taps
    m_p, logs_p, mask = net.enc_p(phone, None, lengths)
    z_p = (m_p + torch.exp(logs_p) * z_noise * 0.66666) * mask
    z = net.flow(z_p, mask, g, reverse=True)
    o = net.dec(z * mask, g)
    taps.update(m_p=m_p, logs_p=logs_p, z_p=z_p, z=z)
    return o, taps


def load_audio(data_dir, seconds=1.0, offset=2.0):
    """1 s of real 16 kHz singing (sox), or a synthetic sung tone if sox or the data is missing."""
    n = int(16000 * (seconds + 0.1))
    clip = os.path.join(data_dir, "singing", "nus48e_JLEE_11.flac")
    if shutil.which("sox") and os.path.exists(clip):
        raw = subprocess.run(["sox", clip, "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-"],
                             check=True, capture_output=True).stdout
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
        start = int(offset * 16000)
        if len(x) >= start + n:
            return x[start:start + n], os.path.basename(clip)
    t = np.arange(n) / 16000.0
    f = 220 * 2 ** (0.3 * np.sin(2 * np.pi * 0.8 * t))
    return 0.3 * np.sin(2 * np.pi * np.cumsum(f) / 16000.0), "synthetic"


def features(x, dim, frames, seed):
    """Content-feature stand-ins: log spectra at 50 frames/s (hop 320, window 640) through a fixed random
    projection, normalised, then repeated x2 to 100 frames/s like the RVC pipeline."""
    hop, win = 320, 640
    n50 = (frames + 1) // 2
    w = np.hanning(win)
    spec = []
    for i in range(n50):
        seg = x[i * hop:i * hop + win]
        seg = np.pad(seg, (0, win - len(seg)))
        spec.append(np.log(np.abs(np.fft.rfft(seg * w)) + 1e-3))
    spec = np.array(spec)
    spec = (spec - spec.mean(0)) / (spec.std(0) + 1e-6)
    proj = np.random.default_rng(seed).standard_normal((spec.shape[1], dim)) / math.sqrt(spec.shape[1])
    f = spec @ proj
    f = np.repeat(f, 2, axis=0)[:frames]
    return torch.from_numpy(f.astype(np.float32))[None]


def f0_track(x, frames):
    """Plain normalised-autocorrelation f0 at 100 frames/s (hop 160, window 1024), 80-800 Hz; frames
    with a weak peak or little energy are unvoiced (0)."""
    out = np.zeros(frames)
    win, lo, hi = 1024, 16000 // 800, 16000 // 80
    level = np.sqrt(np.mean(x ** 2))
    for i in range(frames):
        seg = x[i * 160:i * 160 + win]
        if len(seg) < win or np.sqrt(np.mean(seg ** 2)) < 0.3 * level:
            continue
        seg = seg - seg.mean()
        ac = np.correlate(seg, seg, "full")[win - 1:]
        ac = ac / (ac[0] + 1e-12)
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5:
            out[i] = 16000.0 / lag
    return out


def make(out, data_dir):
    os.makedirs(out, exist_ok=True)
    audio, clip = load_audio(data_dir)
    f0 = f0_track(audio, FRAMES)
    f0[40:46] = 0  # make sure there is an unvoiced stretch inside the clip
    tensors = {}

    def put(key, x):
        a = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        a.tofile(os.path.join(out, key + ".f32"))
        tensors[key] = {"file": key + ".f32", "shape": list(a.shape)}

    models = {}
    for k, (name, seed) in enumerate((("v2", 101), ("v1", 202), ("nono", 303))):
        cfg = CONFIGS[name]
        net = build(name, seed)
        path = os.path.join(out, "rvc_%s.pth" % name)
        save(net, name, path)
        phone_dim = 768 if VERSION[name] == "v2" else 256
        upp = int(np.prod(cfg[12]))
        phone = features(audio, phone_dim, FRAMES, seed)
        pitch = torch.from_numpy(R.rvc_pitch_coarse(f0))[None]
        nsff0 = torch.from_numpy(f0.astype(np.float32))[None]
        g = torch.Generator().manual_seed(seed + 7)
        z_noise = torch.randn(1, cfg[2], FRAMES, generator=g)
        src_noise = torch.randn(1, FRAMES * upp, 1, generator=g)
        sid = k % cfg[15]
        o, taps = infer(net, name, phone, pitch, nsff0, sid, z_noise, src_noise)
        p = name + "_"
        put(p + "phone", phone[0])
        put(p + "z_noise", z_noise[0])
        put(p + "src_noise", src_noise[0, :, 0])
        for key in ("m_p", "logs_p", "z_p", "z"):
            put(p + key, taps[key][0])
        if F0[name]:
            put(p + "har_source", taps["har_source"][0, 0])
        put(p + "audio", o[0, 0])
        models[name] = {"file": os.path.basename(path), "sid": sid, "hop": upp, "sr": cfg[-1], "inter": cfg[2],
                        "phone_dim": phone_dim, "f0": F0[name], "version": int(VERSION[name][1]),
                        "speakers": cfg[15]}
        if name == "v2":  # bad checkpoints for the error paths
            save(net, name, os.path.join(out, "bad_config.pth"), config=list(cfg)[:17])
            w = {k2: v.half() for k2, v in net.state_dict().items() if "enc_q" not in k2}
            missing = dict(w)
            del missing["enc_p.encoder.attn_layers.1.conv_k.weight"]
            torch.save({"weight": missing, "config": list(cfg), "sr": "3k", "f0": 1, "version": "v2"},
                       os.path.join(out, "bad_missing.pth"))
            shaped = dict(w)
            shaped["flow.flows.2.post.weight"] = torch.zeros(cfg[2] // 2, cfg[3] + 1, 1).half()
            torch.save({"weight": shaped, "config": list(cfg), "sr": "3k", "f0": 1, "version": "v2"},
                       os.path.join(out, "bad_shape.pth"))
            torch.save({"model": w, "config": list(cfg)}, os.path.join(out, "bad_training.pth"))
            torch.save({"weight": w, "config": list(cfg), "f0": 1, "version": "v1"},
                       os.path.join(out, "bad_version.pth"))
    put("f0", f0)
    put("pitch", R.rvc_pitch_coarse(f0))
    json.dump({"tensors": tensors, "models": models, "frames": FRAMES, "clip": clip},
              open(os.path.join(out, "golden.json"), "w"), indent=1)
    print("wrote", out, sorted(models))


def time_torch(path, frames, runs):
    torch.set_num_threads(2)
    net, _ = M.load_rvc(path)
    upp = net.dec.upp
    g = torch.Generator().manual_seed(1)
    phone = torch.randn(1, frames, 768, generator=g)
    tt = np.arange(frames) / 100.0
    f0 = 220.0 * 2 ** (0.5 * np.sin(2 * np.pi * 0.7 * tt))
    pitch = torch.from_numpy(R.rvc_pitch_coarse(f0))[None]
    nsff0 = torch.from_numpy(f0.astype(np.float32))[None]
    zn = torch.randn(1, net.flow.flows[0].half * 2, frames, generator=g)
    sn = torch.randn(1, frames * upp, 1, generator=g)
    secs = []
    for _ in range(runs):
        t = time.time()
        net.infer(phone, torch.tensor([frames]), pitch, nsff0, torch.tensor([0]), zn, sn)
        secs.append(time.time() - t)
    print(json.dumps({"frames": frames, "runs": runs, "seconds": secs, "median_s": float(np.median(secs)),
                      "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--time":
        time_torch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        data = os.environ.get("AVO_TEST_DATA") or "/work/shared/data"
        if "--data" in sys.argv:
            data = sys.argv[sys.argv.index("--data") + 1]
        make(sys.argv[1], data)
