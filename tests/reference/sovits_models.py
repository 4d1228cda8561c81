"""PyTorch reference of the so-vits-svc 4.0 / 4.1 generator (SynthesizerTrn) inference path.

Written from facts read in svc-develop-team/so-vits-svc (shapes, key names, constants, order of
operations; see the "so-vits-svc 4.x" section of README.md in this folder); the code is our own.
Blocks that are the same as in RVC (the VITS transformer with relative attention, the mean-only
coupling flows, WN, HiFi-GAN ResBlock1, the posterior encoder) are imported from rvc_models.py;
what differs is written here:

  SovitsTextEncoder   enc_p: the input is already hidden-sized (pre-net outside), f0_emb(256) added,
                      relative-attention window 4 (RVC: 10), no sqrt(hidden) scale, no leaky ReLU
  sovits_sine_source  SineGen as so-vits runs it: f0 upsampled to samples first, 9 harmonics
                      (harmonic_num 8) with a random initial phase per overtone, noise per harmonic
  SovitsNSFGenerator  dec: weight-normed conv_pre, conv_post with bias, Linear(9, 1) source mixer
  SynthesizerTrn      pre (Conv1d k5), emb_uv, optional emb_vol (4.1), emb_g, enc_p, flow with
                      WN of n_flow_layer (4) layers, dec; enc_q and f0_decoder only for the
                      checkpoint layout

Out of scope (built only so the key layout of real checkpoints is complete, or not at all): the
F0 predictor f0_decoder (auto_predict_f0), the posterior encoder enc_q, the diffusion / shallow
diffusion models, the NSF-HiFiGAN enhancer, speaker mixing, depthwise-separable convs
(use_depthwise_conv), shared flow parameters (flow_share_parameter), the VITS2 transformer flow
(use_transformer_flow) and the nsf-snake-hifigan vocoder. SynthesizerTrn refuses those options.

Every random draw of inference is an argument: the prior noise z_noise [inter, T] (the
torch.randn_like(m_p) of enc_p, scaled by noise_scale), the initial phases rand_ini [9] (first one
forced to 0, as upstream) and the source noise sine_noise [T*hop, 9].
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm

import rvc_models as R

LRELU_SLOPE = 0.1
N_HARMONICS = 9  # SourceModuleHnNSF(harmonic_num=8): the fundamental and 8 overtones
SINE_AMP, NOISE_STD = 0.1, 0.003
F0_BIN, F0_MIN, F0_MAX = 256, 50.0, 1100.0
F0_MEL_MIN = 1127 * math.log(1 + F0_MIN / 700)
F0_MEL_MAX = 1127 * math.log(1 + F0_MAX / 700)
ENC_P_WINDOW = 4  # attentions.Encoder default window_size; enc_p does not pass one

# The "model" sections of configs_template/config_template.json (4.1-Stable) and of the 4.0 template,
# with the data values the generator needs. n_speakers is set from the "spk" map by the preprocessor.
MODEL_COMMON = {
    "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
    "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [8, 8, 2, 2, 2],
    "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 4, 4, 4], "n_layers_q": 3,
    "use_spectral_norm": False,
}
MODEL_40 = dict(MODEL_COMMON, gin_channels=256, ssl_dim=256, n_speakers=200)
MODEL_41 = dict(MODEL_COMMON, n_layers_trans_flow=3, n_flow_layer=4, gin_channels=768, ssl_dim=768,
                n_speakers=200, vocoder_name="nsf-hifigan", speech_encoder="vec768l12",
                speaker_embedding=False, vol_embedding=False, use_depthwise_conv=False,
                flow_share_parameter=False, use_automatic_f0_prediction=True, use_transformer_flow=False)
DATA = {"training_files": "filelists/train.txt", "validation_files": "filelists/val.txt",
        "max_wav_value": 32768.0, "sampling_rate": 44100, "filter_length": 2048, "hop_length": 512,
        "win_length": 2048, "n_mel_channels": 80, "mel_fmin": 0.0, "mel_fmax": 22050}
TRAIN = {"log_interval": 200, "eval_interval": 800, "seed": 1234, "epochs": 10000, "learning_rate": 0.0001,
         "betas": [0.8, 0.99], "eps": 1e-09, "batch_size": 6, "fp16_run": False, "lr_decay": 0.999875,
         "segment_size": 10240, "init_lr_ratio": 1, "warmup_epochs": 0, "c_mel": 45, "c_kl": 1.0,
         "use_sr": True, "max_speclen": 512, "port": "8001", "keep_ckpts": 3}


def make_config(version, spk_names, **model_overrides):
    """A config.json dict as preprocess_flist_config.py writes it for 4.0 or 4.1."""
    if version == "4.0":
        model = dict(MODEL_40)
        data = dict(DATA)
        train = dict(TRAIN)
    else:
        model = dict(MODEL_41)
        data = dict(DATA, unit_interpolate_mode="nearest")
        train = dict(TRAIN, half_type="fp16", all_in_mem=False, vol_aug=False)
    spk = {name: i for i, name in enumerate(spk_names)}
    model["n_speakers"] = len(spk)
    model.update(model_overrides)
    if model.get("vol_embedding"):
        train["vol_aug"] = True
    return {"train": train, "data": data, "model": model, "spk": spk}


# ---------------------------------------------------------------------------------------------
# glue: pitch index, frame-rate expansion of content units, volume, unvoiced f0 filling
# ---------------------------------------------------------------------------------------------

def f0_to_coarse(f0):
    """utils.f0_to_coarse of 4.1: f0 (Hz, float32 tensor) -> int64 1..255 on the mel scale between 50 and
    1100 Hz, rounded half to even. (4.0 rounds with (x + 0.5).long(); the two differ only on exact ties.)
    Computed in float32 whatever the model's dtype, as upstream feeds float32 f0."""
    f0 = f0.float()
    f0_mel = 1127 * (1 + f0 / 700).log()
    a = (F0_BIN - 2) / (F0_MEL_MAX - F0_MEL_MIN)
    b = F0_MEL_MIN * a - 1.0
    f0_mel = torch.where(f0_mel > 0, f0_mel * a - b, f0_mel)
    c = torch.round(f0_mel).long()
    return c.clamp(1, F0_BIN - 1)


def expand_units(units, frames, mode="nearest"):
    """utils.repeat_expand_2d: content units [D, S] (50 frames/s) -> [D, frames].
    mode "nearest": F.interpolate(size=frames) (4.1 template), unit floor(i * (S / frames)) in float;
    "left" (4.0, and 4.1 configs without unit_interpolate_mode): upstream walks the edges
    (j+1) * frames / S and gives frame i the unit j = floor(i * S / frames) when upsampling. Both
    pick the same unit except where float rounding lands on an edge."""
    if mode == "left":
        src = units.shape[-1]
        edges = torch.arange(src + 1) * frames / src
        out = torch.zeros(units.shape[0], frames, dtype=units.dtype)
        j = 0
        for i in range(frames):
            if not i < edges[j + 1]:
                j += 1
            out[:, i] = units[:, j]
        return out
    return F.interpolate(units[None], size=frames, mode=mode)[0]


def volume(audio, hop):
    """utils.Volume_Extractor.extract: RMS per hop of the model-rate audio [N] -> [N // hop]; the
    squared signal is reflect-padded by hop//2 left and (hop+1)//2 right, then averaged per hop."""
    n_frames = audio.shape[-1] // hop
    a2 = F.pad((audio ** 2)[None, None], (hop // 2, (hop + 1) // 2), mode="reflect")[0, 0]
    return a2[:n_frames * hop].view(n_frames, hop).mean(1).sqrt()


def fill_unvoiced(f0, hop, sr):
    """F0 predictors' post_process: uv = f0 > 0; f0 linearly interpolated in time across unvoiced frames
    (held at the ends). The generator gets the filled f0 (its sine runs through unvoiced frames) and uv.
    np in, np float32 out."""
    f0 = np.asarray(f0, dtype=np.float64)
    uv = (f0 > 0).astype(np.float32)
    nz = np.nonzero(f0)[0]
    if len(nz) == 0:
        return np.zeros_like(f0, dtype=np.float32), uv
    t = np.arange(len(f0)) * hop / sr
    filled = np.interp(t, nz * hop / sr, f0[nz], left=f0[nz[0]], right=f0[nz[-1]])
    return filled.astype(np.float32), uv


# ---------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------

class SovitsTextEncoder(nn.Module):
    """enc_p: x (already pre(c) + emb_uv + emb_vol, [B, hidden, T]) plus f0_emb(coarse) through the
    post-LN relative-attention encoder enc_ (window 4), then proj to mean and log-std."""

    def __init__(self, out_channels, hidden, filter_channels, n_heads, n_layers, kernel_size):
        super().__init__()
        self.out_channels = out_channels
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)
        self.f0_emb = nn.Embedding(F0_BIN, hidden)
        self.enc_ = R.AttnEncoder(hidden, filter_channels, n_heads, n_layers, kernel_size, ENC_P_WINDOW)

    def forward(self, x, mask, coarse):
        x = x + self.f0_emb(coarse).transpose(1, 2)
        x = self.enc_(x * mask, mask)
        stats = self.proj(x) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs


class _PlainAttention(nn.Module):
    """Parameter layout of attentions.MultiHeadAttention without relative embeddings (the F0 decoder's)."""

    def __init__(self, channels):
        super().__init__()
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)


class _FFTLayout(nn.Module):
    """Parameter layout of attentions.FFT (the F0 decoder's causal transformer)."""

    def __init__(self, hidden, filter_channels, n_layers, kernel_size):
        super().__init__()
        self.self_attn_layers = nn.ModuleList([_PlainAttention(hidden) for _ in range(n_layers)])
        self.norm_layers_0 = nn.ModuleList([R.ChannelLayerNorm(hidden) for _ in range(n_layers)])
        self.ffn_layers = nn.ModuleList([R.FFN(hidden, hidden, filter_channels, kernel_size) for _ in range(n_layers)])
        self.norm_layers_1 = nn.ModuleList([R.ChannelLayerNorm(hidden) for _ in range(n_layers)])


class F0DecoderLayout(nn.Module):
    """f0_decoder (F0Decoder): parameters only, so that checkpoints carry the keys real ones do.
    Predicting f0 is out of scope; forward is not implemented."""

    def __init__(self, hidden, filter_channels, n_layers, kernel_size, spk_channels):
        super().__init__()
        self.prenet = nn.Conv1d(hidden, hidden, 3, padding=1)
        self.decoder = _FFTLayout(hidden, filter_channels, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden, 1, 1)
        self.f0_prenet = nn.Conv1d(1, hidden, 3, padding=1)
        self.cond = nn.Conv1d(spk_channels, hidden, 1)


def sovits_sine_source(f0, upp, sr, rand_ini=None, noise=None, n_harmonics=N_HARMONICS):
    """SineGen (harmonic_num 8) on the non-ONNX path that so-vits inference takes.

    f0 [B, T] frame-rate Hz (0 unvoiced). The f0 track is first upsampled to samples (nearest, x upp);
    harmonic h (1..9) advances by frac(h * f0 / sr) per sample; rand_ini [B, 9] (or [9]) is added to
    the first sample's increment (entry 0 is forced to 0, as upstream); the phase is the cumulative
    sum with -1 wherever the running cumsum % 1 decreases (whole cycles only: the sine equals
    0.1 sin(2 pi (rand_ini_h + cumsum(frac(h f0 / sr))))). Voiced samples get that sine plus 0.003
    noise, unvoiced samples (f0 == 0) 0.1/3 noise only. noise [B, T*upp, 9] standard normal draws
    (zeros if None). Returns [B, T*upp, 9]."""
    B, T = f0.shape
    f = f0.repeat_interleave(upp, dim=1).unsqueeze(-1)  # == nn.Upsample(scale_factor=upp) for upp 2^k
    fn = f * torch.arange(1, n_harmonics + 1, dtype=f.dtype)
    rad = (fn / sr) % 1
    if rand_ini is not None:
        ini = rand_ini.reshape(-1, n_harmonics).to(rad.dtype).clone()
        ini[:, 0] = 0
        rad[:, 0, :] = rad[:, 0, :] + ini
    wrapped = torch.cumsum(rad, 1) % 1
    wraps = (wrapped[:, 1:, :] - wrapped[:, :-1, :]) < 0
    shift = torch.zeros_like(rad)
    shift[:, 1:, :] = wraps.to(rad.dtype) * -1.0
    sine = torch.sin(torch.cumsum(rad + shift, dim=1) * 2 * np.pi) * SINE_AMP
    uv = (f > 0).to(f.dtype)
    if noise is None:
        noise = torch.zeros_like(sine)
    noise_amp = uv * NOISE_STD + (1 - uv) * SINE_AMP / 3
    return sine * uv + noise_amp * noise


class SovitsSource(nn.Module):
    """m_source (SourceModuleHnNSF): 9 sine harmonics mixed by l_linear, then tanh. Its own noise branch
    (randn_like(uv) * 0.1 / 3) is unused by the generator and left out."""

    def __init__(self, sr):
        super().__init__()
        self.sr = sr
        self.l_linear = nn.Linear(N_HARMONICS, 1)

    def forward(self, f0, upp, rand_ini=None, noise=None):
        s = sovits_sine_source(f0, upp, self.sr, rand_ini, noise)
        return torch.tanh(self.l_linear(s.to(self.l_linear.weight.dtype)))


class SovitsNSFGenerator(nn.Module):
    """vdecoder/hifigan/models.py Generator (nsf-hifigan), resblock "1" only.
    Paddings: 4.1 uses (k - u + 1) // 2 for ups and (s + 1) // 2 for noise_convs; 4.0 (k - u) // 2 and
    s // 2. They agree when k - u and s are even, as in every shipped config; legacy_padding=True
    gives the 4.0 formulas."""

    def __init__(self, inter_channels, resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates,
                 upsample_initial_channel, upsample_kernel_sizes, gin_channels, sr, legacy_padding=False):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upp = int(np.prod(upsample_rates))
        self.m_source = SovitsSource(sr)
        self.noise_convs = nn.ModuleList()
        self.conv_pre = weight_norm(nn.Conv1d(inter_channels, upsample_initial_channel, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in = upsample_initial_channel // (2 ** i)
            c_out = upsample_initial_channel // (2 ** (i + 1))
            pad = (k - u) // 2 if legacy_padding else (k - u + 1) // 2
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, u, padding=pad)))
            if i + 1 < len(upsample_rates):
                s = int(np.prod(upsample_rates[i + 1:]))
                spad = s // 2 if legacy_padding else (s + 1) // 2
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=2 * s, stride=s, padding=spad))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))
        self.resblocks = nn.ModuleList()
        for i in range(self.num_upsamples):
            ch = upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(R.ResBlock1(ch, k, d))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, 1, padding=3))
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x, f0, g, rand_ini=None, noise=None, taps=None):
        src = self.m_source(f0, self.upp, rand_ini, noise).transpose(1, 2)  # [B, 1, T*upp]
        if taps is not None:
            taps["har_source"] = src
        x = self.conv_pre(x) + self.cond(g)
        for i in range(self.num_upsamples):
            x = self.ups[i](F.leaky_relu(x, LRELU_SLOPE))
            x = x + self.noise_convs[i](src)
            xs = 0
            for j in range(self.num_kernels):
                xs = xs + self.resblocks[i * self.num_kernels + j](x)
            x = xs / self.num_kernels
            if taps is not None:
                taps["dec_stage%d" % i] = x
        x = self.conv_post(F.leaky_relu(x))  # torch's default slope 0.01, as upstream
        return torch.tanh(x)


class SynthesizerTrn(nn.Module):
    """so-vits-svc 4.0 / 4.1 generator, constructed from a config.json dict (make_config).
    Submodules are registered in upstream order, so state_dict() lists keys as real checkpoints do:
    emb_g, [emb_vol], pre, enc_p, dec, [enc_q], flow, [f0_decoder], emb_uv."""

    def __init__(self, config, with_enc_q=True, with_f0_decoder=None):
        super().__init__()
        m, d = config["model"], config["data"]
        for key, ok in (("use_depthwise_conv", False), ("flow_share_parameter", False),
                        ("use_transformer_flow", False), ("vocoder_name", "nsf-hifigan"), ("resblock", "1")):
            if m.get(key, ok) != ok:
                raise NotImplementedError("so-vits option %s=%r is out of scope" % (key, m[key]))
        self.sr = d["sampling_rate"]
        self.hop = d["hop_length"]
        self.inter = m["inter_channels"]
        hidden = m["hidden_channels"]
        self.vol_embedding = bool(m.get("vol_embedding", False))
        self.version = "4.1" if "speech_encoder" in m else "4.0"
        self.emb_g = nn.Embedding(m["n_speakers"], m["gin_channels"])
        if self.vol_embedding:
            self.emb_vol = nn.Linear(1, hidden)
        self.pre = nn.Conv1d(m["ssl_dim"], hidden, kernel_size=5, padding=2)
        self.enc_p = SovitsTextEncoder(self.inter, hidden, m["filter_channels"], m["n_heads"], m["n_layers"],
                                       m["kernel_size"])
        self.dec = SovitsNSFGenerator(self.inter, m["resblock_kernel_sizes"], m["resblock_dilation_sizes"],
                                      m["upsample_rates"], m["upsample_initial_channel"], m["upsample_kernel_sizes"],
                                      m["gin_channels"], self.sr, legacy_padding=self.version == "4.0")
        if self.dec.upp != self.hop:
            raise ValueError("prod(upsample_rates) %d != hop_length %d" % (self.dec.upp, self.hop))
        if with_enc_q:
            spec_channels = d["filter_length"] // 2 + 1
            self.enc_q = R.PosteriorEncoder(spec_channels, self.inter, hidden, 5, 1, 16, m["gin_channels"])
        self.flow = R.ResidualCouplingBlock(self.inter, hidden, 5, 1, m.get("n_flow_layer", 4), m["gin_channels"])
        if with_f0_decoder is None:
            with_f0_decoder = m.get("use_automatic_f0_prediction", True)
        if with_f0_decoder:
            self.f0_decoder = F0DecoderLayout(hidden, m["filter_channels"], m["n_layers"], m["kernel_size"],
                                              m["gin_channels"])
        self.emb_uv = nn.Embedding(2, hidden)

    @torch.no_grad()
    def infer(self, c, f0, uv, sid, vol=None, noise_scale=0.4, z_noise=None, rand_ini=None, sine_noise=None,
              taps=None):
        """SynthesizerTrn.infer with predict_f0=False and its draws passed in.
        c [B, ssl_dim, T] content units at the model frame rate; f0 [B, T] Hz (unvoiced frames filled,
        see fill_unvoiced); uv [B, T] 1 voiced / 0; sid [B] speaker ids; vol [B, T] (only used when the
        model has vol_embedding); z_noise [B, inter, T] standard normal; rand_ini [B, 9] uniform [0, 1);
        sine_noise [B, T*hop, 9] standard normal. Returns audio [B, 1, T*hop]."""
        B, _, T = c.shape
        mask = torch.ones(B, 1, T, dtype=c.dtype)
        g = self.emb_g(sid).unsqueeze(-1)  # [B, gin, 1]
        x = self.pre(c) * mask + self.emb_uv(uv.long()).transpose(1, 2)
        if vol is not None and self.vol_embedding:
            x = x + self.emb_vol(vol[:, :, None]).transpose(1, 2)
        coarse = f0_to_coarse(f0)
        m_p, logs_p = self.enc_p(x, mask, coarse)
        if z_noise is None:
            z_noise = torch.zeros_like(m_p)
        z_p = (m_p + z_noise * torch.exp(logs_p) * noise_scale) * mask
        z = self.flow(z_p, mask, g, reverse=True)
        o = self.dec(z * mask, f0, g, rand_ini, sine_noise, taps)
        if taps is not None:
            taps.update(x=x, coarse=coarse, m_p=m_p, logs_p=logs_p, z_p=z_p, z=z, g=g)
        return o


def count_params(module, skip_prefixes=()):
    return sum(p.numel() for n, p in module.named_parameters() if not n.startswith(tuple(skip_prefixes)))
