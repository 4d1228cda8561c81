"""PyTorch reference models for the AutoVoice C inference engine.

Written from the published model descriptions and the upstream projects' shapes, key names and
constants (see README.md in this folder); the code here is our own. Three models:

  SynthesizerTrnMs768NSFsid  RVC v2 synthesizer with f0 (TextEncoder + flows + NSF-HiFiGAN)
  E2E (+ MelSpectrogram, decode_salience)  RMVPE pitch estimator
  HubertBase                 fairseq HuBERT-base / ContentVec feature extractor

Parameter and buffer names match the upstream checkpoints exactly, so load_state_dict(strict=True)
works on real files. Every random draw of the inference path (the prior sample of infer() and the
NSF noise) can be passed in, so a C engine can reproduce an output bit for bit up to float rounding.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import weight_norm

LRELU_SLOPE = 0.1  # HiFi-GAN's slope inside the generator; the final activation uses torch's 0.01

# Configs as stored in RVC v2 .pth files ("config" list). Order: spec_channels, segment_size,
# inter_channels, hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout,
# resblock, resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates, upsample_initial_channel,
# upsample_kernel_sizes, spk_embed_dim, gin_channels, sr.
RVC_V2_CONFIGS = {
    "32k": [513, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            [10, 8, 2, 2], 512, [20, 16, 4, 4], 109, 256, 32000],
    "40k": [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            [10, 10, 2, 2], 512, [16, 16, 4, 4], 109, 256, 40000],
    "48k": [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
            [12, 10, 2, 2], 512, [24, 20, 4, 4], 109, 256, 48000],
}


# ---------------------------------------------------------------------------------------------
# VITS building blocks (attentions.py / modules.py / commons.py of VITS and RVC)
# ---------------------------------------------------------------------------------------------

def length_mask(lengths, max_len):
    """[B] lengths -> [B, 1, T] float mask, 1 inside each sequence."""
    t = torch.arange(max_len, device=lengths.device)
    return (t[None, :] < lengths[:, None]).unsqueeze(1).float()


def same_padding(kernel_size, dilation=1):
    return (kernel_size * dilation - dilation) // 2


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of [B, C, T]; parameters are named gamma and beta."""

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        y = F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.gamma, self.beta, self.eps)
        return y.transpose(1, 2)


def relative_table(emb, length, window):
    """emb [1, 2W+1, d] indexed by offset+W -> [1, 2L-1, d] indexed by offset+(L-1), zero where
    |offset| > W (the upstream pads the table with zeros, which gives the same thing)."""
    offsets = torch.arange(-(length - 1), length, device=emb.device)
    valid = offsets.abs() <= window
    idx = (offsets.clamp(-window, window) + window)
    table = emb[:, idx, :]
    return table * valid[None, :, None].to(table.dtype)


def rel_to_abs(x):
    """[B, H, L, 2L-1] scores by relative offset -> [B, H, L, L]: out[i, j] = x[i, j - i + L - 1]."""
    L = x.shape[2]
    i = torch.arange(L, device=x.device)[:, None]
    j = torch.arange(L, device=x.device)[None, :]
    idx = (j - i + L - 1).expand(*x.shape[:2], L, L)
    return torch.gather(x, 3, idx)


def abs_to_rel(x):
    """[B, H, L, L] -> [B, H, L, 2L-1]: out[i, r] = x[i, r + i - (L-1)], zero outside the row."""
    L = x.shape[2]
    padded = F.pad(x, (L - 1, L - 1))
    i = torch.arange(L, device=x.device)[:, None]
    r = torch.arange(2 * L - 1, device=x.device)[None, :]
    idx = (r + i).expand(*x.shape[:2], L, 2 * L - 1)
    return torch.gather(padded, 3, idx)


class RelPosMultiHeadAttention(nn.Module):
    """Multi-head self-attention with Shaw-style relative keys and values shared over heads."""

    def __init__(self, channels, out_channels, n_heads, window_size=10):
        super().__init__()
        assert channels % n_heads == 0
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, out_channels, 1)
        std = self.k_channels ** -0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window_size + 1, self.k_channels) * std)

    def forward(self, x, attn_mask):
        B, C, T = x.shape
        H, D = self.n_heads, self.k_channels
        q = self.conv_q(x).view(B, H, D, T).transpose(2, 3)  # [B, H, T, D]
        k = self.conv_k(x).view(B, H, D, T).transpose(2, 3)
        v = self.conv_v(x).view(B, H, D, T).transpose(2, 3)
        q = q / math.sqrt(D)
        scores = q @ k.transpose(-2, -1)
        rel_k = relative_table(self.emb_rel_k, T, self.window_size)  # [1, 2T-1, D]
        scores = scores + rel_to_abs(q @ rel_k.unsqueeze(0).transpose(-2, -1))
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = torch.softmax(scores, dim=-1)
        out = p @ v
        rel_v = relative_table(self.emb_rel_v, T, self.window_size)
        out = out + abs_to_rel(p) @ rel_v.unsqueeze(0)
        out = out.transpose(2, 3).reshape(B, C, T)
        return self.conv_o(out)


class FFN(nn.Module):
    """Two 'same'-padded convolutions with ReLU between, masked before each."""

    def __init__(self, in_channels, out_channels, filter_channels, kernel_size):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv_1 = nn.Conv1d(in_channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, out_channels, kernel_size)

    def _pad(self, x):
        k = self.kernel_size
        return F.pad(x, ((k - 1) // 2, k // 2))

    def forward(self, x, mask):
        x = torch.relu(self.conv_1(self._pad(x * mask)))
        x = self.conv_2(self._pad(x * mask))
        return x * mask


class AttnEncoder(nn.Module):
    """Post-LN transformer encoder of VITS (attentions.Encoder): attention, add, norm, FFN, add, norm."""

    def __init__(self, hidden, filter_channels, n_heads, n_layers, kernel_size, window_size=10):
        super().__init__()
        self.attn_layers = nn.ModuleList()
        self.norm_layers_1 = nn.ModuleList()
        self.ffn_layers = nn.ModuleList()
        self.norm_layers_2 = nn.ModuleList()
        for _ in range(n_layers):
            self.attn_layers.append(RelPosMultiHeadAttention(hidden, hidden, n_heads, window_size))
            self.norm_layers_1.append(ChannelLayerNorm(hidden))
            self.ffn_layers.append(FFN(hidden, hidden, filter_channels, kernel_size))
            self.norm_layers_2.append(ChannelLayerNorm(hidden))

    def forward(self, x, mask):
        attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1)  # [B, 1, T, T]
        x = x * mask
        for attn, n1, ffn, n2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                     self.norm_layers_2):
            x = n1(x + attn(x, attn_mask))
            x = n2(x + ffn(x, mask))
        return x * mask


class TextEncoder768(nn.Module):
    """RVC v2 content encoder: 768-d HuBERT features plus coarse pitch (1..255) -> prior mean/log-std."""

    def __init__(self, out_channels, hidden, filter_channels, n_heads, n_layers, kernel_size):
        super().__init__()
        self.out_channels = out_channels
        self.hidden = hidden
        self.emb_phone = nn.Linear(768, hidden)
        self.emb_pitch = nn.Embedding(256, hidden)
        self.encoder = AttnEncoder(hidden, filter_channels, n_heads, n_layers, kernel_size)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)

    def forward(self, phone, pitch, lengths):
        x = self.emb_phone(phone) + self.emb_pitch(pitch)  # [B, T, H]
        x = F.leaky_relu(x * math.sqrt(self.hidden), 0.1).transpose(1, 2)
        mask = length_mask(lengths, x.shape[2])
        x = self.encoder(x * mask, mask)
        stats = self.proj(x) * mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return m, logs, mask


class WN(nn.Module):
    """WaveNet-style gated stack with global conditioning (modules.WN)."""

    def __init__(self, hidden, kernel_size, dilation_rate, n_layers, gin_channels):
        super().__init__()
        self.hidden = hidden
        self.n_layers = n_layers
        self.cond_layer = weight_norm(nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1))
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        for i in range(n_layers):
            d = dilation_rate ** i
            self.in_layers.append(weight_norm(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=d,
                                                        padding=same_padding(kernel_size, d))))
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip_layers.append(weight_norm(nn.Conv1d(hidden, out, 1)))

    def forward(self, x, mask, g):
        h = self.hidden
        out = torch.zeros_like(x)
        gc = self.cond_layer(g)
        for i in range(self.n_layers):
            a = self.in_layers[i](x) + gc[:, 2 * h * i:2 * h * (i + 1)]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            rs = self.res_skip_layers[i](acts)
            if i < self.n_layers - 1:
                x = (x + rs[:, :h]) * mask
                out = out + rs[:, h:]
            else:
                out = out + rs
        return out * mask


class ResidualCouplingLayer(nn.Module):
    """Mean-only affine coupling: the second half is shifted by a WN prediction from the first."""

    def __init__(self, channels, hidden, kernel_size, dilation_rate, n_layers, gin_channels):
        super().__init__()
        self.half = channels // 2
        self.pre = nn.Conv1d(self.half, hidden, 1)
        self.enc = WN(hidden, kernel_size, dilation_rate, n_layers, gin_channels)
        self.post = nn.Conv1d(hidden, self.half, 1)

    def forward(self, x, mask, g, reverse=True):
        x0, x1 = torch.split(x, self.half, dim=1)
        h = self.pre(x0) * mask
        h = self.enc(h, mask, g)
        m = self.post(h) * mask
        x1 = (x1 - m) * mask if reverse else m + x1 * mask
        return torch.cat([x0, x1], dim=1)


class Flip(nn.Module):
    def forward(self, x, mask, g, reverse=True):
        return torch.flip(x, [1])


class ResidualCouplingBlock(nn.Module):
    """4 coupling layers interleaved with channel flips: flows.0, .2, .4, .6 carry weights."""

    def __init__(self, channels, hidden, kernel_size, dilation_rate, n_layers, gin_channels, n_flows=4):
        super().__init__()
        self.flows = nn.ModuleList()
        for _ in range(n_flows):
            self.flows.append(ResidualCouplingLayer(channels, hidden, kernel_size, dilation_rate,
                                                    n_layers, gin_channels))
            self.flows.append(Flip())

    def forward(self, x, mask, g, reverse=True):
        flows = reversed(self.flows) if reverse else self.flows
        for f in flows:
            x = f(x, mask, g, reverse)
        return x


class PosteriorEncoder(nn.Module):
    """Training-time spectrogram encoder (enc_q); unused at inference and dropped from RVC .pth files,
    built only so parameter counts with enc_q can be checked."""

    def __init__(self, in_channels, out_channels, hidden, kernel_size, dilation_rate, n_layers, gin):
        super().__init__()
        self.pre = nn.Conv1d(in_channels, hidden, 1)
        self.enc = WN(hidden, kernel_size, dilation_rate, n_layers, gin)
        self.proj = nn.Conv1d(hidden, out_channels * 2, 1)


class ResBlock1(nn.Module):
    """HiFi-GAN resblock type 1: three (dilated conv, conv) pairs with residual adds."""

    def __init__(self, channels, kernel_size, dilations):
        super().__init__()
        self.convs1 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                  padding=same_padding(kernel_size, d))) for d in dilations])
        self.convs2 = nn.ModuleList([
            weight_norm(nn.Conv1d(channels, channels, kernel_size, 1, dilation=1,
                                  padding=same_padding(kernel_size, 1))) for _ in dilations])

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = x + xt
        return x


def sine_excitation(f0, upp, sr, noise=None, sine_amp=0.1, noise_std=0.003):
    """NSF sine source as RVC's SineGen computes it (harmonic_num 0, so no random initial phase).

    f0: [B, T] frame-rate Hz (0 = unvoiced). Returns [B, T*upp, 1]. The phase is accumulated per frame,
    scaled by upp, linearly interpolated to samples (align_corners) and used only to find the samples
    where the phase wraps; the sine then integrates the nearest-upsampled per-sample increment with
    -1 at those wraps. noise: [B, T*upp, 1] standard normal draws (zeros if None)."""
    f = f0.unsqueeze(-1)  # [B, T, 1]
    rad = (f / sr) % 1
    phase_frames = torch.cumsum(rad, dim=1) * upp
    phase = F.interpolate(phase_frames.transpose(1, 2), scale_factor=upp, mode="linear",
                          align_corners=True).transpose(1, 2)
    rad_up = F.interpolate(rad.transpose(1, 2), scale_factor=upp, mode="nearest").transpose(1, 2)
    phase = phase % 1
    wraps = (phase[:, 1:, :] - phase[:, :-1, :]) < 0
    shift = torch.zeros_like(rad_up)
    shift[:, 1:, :] = wraps.to(rad_up.dtype) * -1.0
    sine = torch.sin(torch.cumsum(rad_up + shift, dim=1) * 2 * np.pi) * sine_amp
    uv = (f > 0).to(f.dtype)
    uv = F.interpolate(uv.transpose(1, 2), scale_factor=upp, mode="nearest").transpose(1, 2)
    if noise is None:
        noise = torch.zeros_like(sine)
    noise_amp = uv * noise_std + (1 - uv) * sine_amp / 3
    return sine * uv + noise_amp * noise


class SourceModuleHnNSF(nn.Module):
    def __init__(self, sr):
        super().__init__()
        self.sr = sr
        self.l_linear = nn.Linear(1, 1)

    def forward(self, f0, upp, noise=None):
        return torch.tanh(self.l_linear(sine_excitation(f0, upp, self.sr, noise)))


class GeneratorNSF(nn.Module):
    """NSF-HiFiGAN: HiFi-GAN upsampler with the sine source added after every upsampling stage."""

    def __init__(self, initial_channel, resblock_kernel_sizes, resblock_dilation_sizes, upsample_rates,
                 upsample_initial_channel, upsample_kernel_sizes, gin_channels, sr):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.upp = int(np.prod(upsample_rates))
        self.m_source = SourceModuleHnNSF(sr)
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in = upsample_initial_channel // (2 ** i)
            c_out = upsample_initial_channel // (2 ** (i + 1))
            self.ups.append(weight_norm(nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2)))
            if i + 1 < len(upsample_rates):
                s = int(np.prod(upsample_rates[i + 1:]))  # source downsampled to this stage's rate
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=2 * s, stride=s, padding=s // 2))
            else:
                self.noise_convs.append(nn.Conv1d(1, c_out, kernel_size=1))
        self.resblocks = nn.ModuleList()
        for i in range(self.num_upsamples):
            ch = upsample_initial_channel // (2 ** (i + 1))
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(ch, k, d))
        self.conv_post = nn.Conv1d(ch, 1, 7, 1, padding=3, bias=False)
        self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x, f0, g, noise=None, taps=None):
        src = self.m_source(f0, self.upp, noise).transpose(1, 2)  # [B, 1, T*upp]
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
        x = self.conv_post(F.leaky_relu(x))  # torch default slope 0.01, as upstream
        return torch.tanh(x)


class SynthesizerTrnMs768NSFsid(nn.Module):
    """RVC v2 synthesizer with pitch. Construct with the 18-entry config list of the .pth file."""

    def __init__(self, spec_channels, segment_size, inter_channels, hidden_channels, filter_channels,
                 n_heads, n_layers, kernel_size, p_dropout, resblock, resblock_kernel_sizes,
                 resblock_dilation_sizes, upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
                 spk_embed_dim, gin_channels, sr, with_enc_q=False):
        super().__init__()
        assert resblock == "1", "RVC v2 configs use resblock type 1"
        if isinstance(sr, str):
            sr = {"32k": 32000, "40k": 40000, "48k": 48000}[sr]
        self.sr = sr
        self.enc_p = TextEncoder768(inter_channels, hidden_channels, filter_channels, n_heads, n_layers,
                                    kernel_size)
        self.dec = GeneratorNSF(inter_channels, resblock_kernel_sizes, resblock_dilation_sizes,
                                upsample_rates, upsample_initial_channel, upsample_kernel_sizes,
                                gin_channels, sr)
        if with_enc_q:
            self.enc_q = PosteriorEncoder(spec_channels, inter_channels, hidden_channels, 5, 1, 16,
                                          gin_channels)
        self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, 5, 1, 3, gin_channels)
        self.emb_g = nn.Embedding(spk_embed_dim, gin_channels)

    @torch.no_grad()
    def infer(self, phone, phone_lengths, pitch, nsff0, sid, z_noise=None, src_noise=None, taps=None):
        """phone [B, T, 768], phone_lengths [B], pitch [B, T] int 1..255, nsff0 [B, T] Hz, sid [B].
        z_noise [B, inter, T]: standard normal draws for the prior sample (zeros if None);
        src_noise [B, T*upp, 1]: the NSF noise draws. Returns audio [B, 1, T*upp] and the mask."""
        g = self.emb_g(sid).unsqueeze(-1)
        m_p, logs_p, mask = self.enc_p(phone, pitch, phone_lengths)
        if z_noise is None:
            z_noise = torch.zeros_like(m_p)
        z_p = (m_p + torch.exp(logs_p) * z_noise * 0.66666) * mask
        z = self.flow(z_p, mask, g, reverse=True)
        o = self.dec(z * mask, nsff0, g, src_noise, taps)
        if taps is not None:
            taps.update(m_p=m_p, logs_p=logs_p, z_p=z_p, z=z)
        return o, mask


def rvc_pitch_coarse(f0, f0_min=50.0, f0_max=1100.0):
    """RVC pipeline's f0 -> 1..255 pitch index on the mel scale (np array in, int64 out)."""
    mel_min = 1127 * np.log(1 + f0_min / 700)
    mel_max = 1127 * np.log(1 + f0_max / 700)
    m = 1127 * np.log(1 + np.asarray(f0, dtype=np.float64) / 700)
    pos = m > 0
    m[pos] = (m[pos] - mel_min) * 254 / (mel_max - mel_min) + 1
    m[m <= 1] = 1
    m[m > 255] = 255
    return np.rint(m).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# RMVPE (infer/lib/rmvpe.py): mel front end, deep U-Net, BiGRU, 360 pitch bins of 20 cents
# ---------------------------------------------------------------------------------------------

def mel_filterbank_htk(sr, n_fft, n_mels, fmin, fmax):
    """librosa.filters.mel(htk=True, norm='slaney') rebuilt: triangles on the HTK mel scale,
    each scaled to unit area (2 / bandwidth). Returns float32 [n_mels, n_fft//2+1]."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)

    fft_freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(hz)
    ramps = hz[:, None] - fft_freqs[None, :]
    w = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        w[i] = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (hz[2:n_mels + 2] - hz[:n_mels]))[:, None]
    return w.astype(np.float32)


class RmvpeMel(nn.Module):
    """Log-mel front end: periodic Hann 1024, hop 160, centred with reflect padding, magnitude
    spectrum, HTK-mel 128 bands 30-8000 Hz, log(max(x, 1e-5))."""

    def __init__(self, sr=16000, n_fft=1024, hop=160, n_mels=128, fmin=30.0, fmax=8000.0, clamp=1e-5):
        super().__init__()
        self.n_fft, self.hop, self.clamp = n_fft, hop, clamp
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank_htk(sr, n_fft, n_mels, fmin, fmax)))
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True))

    def forward(self, audio):
        """audio [B, N] at 16 kHz -> [B, 128, N//160 + 1]."""
        spec = torch.stft(audio, self.n_fft, self.hop, self.n_fft, self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        mag = torch.sqrt(spec.real ** 2 + spec.imag ** 2)
        return torch.log(torch.clamp(self.mel_basis @ mag, min=self.clamp))


class ConvBlockRes(nn.Module):
    def __init__(self, cin, cout, momentum=0.01):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(cin, cout, (3, 3), (1, 1), (1, 1), bias=False), nn.BatchNorm2d(cout, momentum=momentum),
            nn.ReLU(),
            nn.Conv2d(cout, cout, (3, 3), (1, 1), (1, 1), bias=False), nn.BatchNorm2d(cout, momentum=momentum),
            nn.ReLU())
        self.has_shortcut = cin != cout
        if self.has_shortcut:
            self.shortcut = nn.Conv2d(cin, cout, (1, 1))

    def forward(self, x):
        return self.conv(x) + (self.shortcut(x) if self.has_shortcut else x)


class ResEncoderBlock(nn.Module):
    def __init__(self, cin, cout, kernel_size, n_blocks):
        super().__init__()
        self.conv = nn.ModuleList([ConvBlockRes(cin, cout)] +
                                  [ConvBlockRes(cout, cout) for _ in range(n_blocks - 1)])
        self.pool = nn.AvgPool2d(kernel_size) if kernel_size is not None else None

    def forward(self, x):
        for c in self.conv:
            x = c(x)
        return x if self.pool is None else (x, self.pool(x))


class RmvpeEncoder(nn.Module):
    def __init__(self, cin, n_encoders, kernel_size, n_blocks, cout=16):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin, momentum=0.01)
        self.layers = nn.ModuleList()
        for _ in range(n_encoders):
            self.layers.append(ResEncoderBlock(cin, cout, kernel_size, n_blocks))
            cin, cout = cout, cout * 2
        self.out_channel = cout

    def forward(self, x):
        skips = []
        x = self.bn(x)
        for layer in self.layers:
            s, x = layer(x)
            skips.append(s)
        return x, skips


class Intermediate(nn.Module):
    def __init__(self, cin, cout, n_inters, n_blocks):
        super().__init__()
        self.layers = nn.ModuleList([ResEncoderBlock(cin, cout, None, n_blocks)] +
                                    [ResEncoderBlock(cout, cout, None, n_blocks) for _ in range(n_inters - 1)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ResDecoderBlock(nn.Module):
    def __init__(self, cin, cout, stride, n_blocks):
        super().__init__()
        out_pad = (0, 1) if tuple(stride) == (1, 2) else (1, 1)
        self.conv1 = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, (3, 3), stride, (1, 1), output_padding=out_pad, bias=False),
            nn.BatchNorm2d(cout, momentum=0.01), nn.ReLU())
        self.conv2 = nn.ModuleList([ConvBlockRes(cout * 2, cout)] +
                                   [ConvBlockRes(cout, cout) for _ in range(n_blocks - 1)])

    def forward(self, x, skip):
        x = torch.cat((self.conv1(x), skip), dim=1)
        for c in self.conv2:
            x = c(x)
        return x


class RmvpeDecoder(nn.Module):
    def __init__(self, cin, n_decoders, stride, n_blocks):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(n_decoders):
            self.layers.append(ResDecoderBlock(cin, cin // 2, stride, n_blocks))
            cin //= 2

    def forward(self, x, skips):
        for i, layer in enumerate(self.layers):
            x = layer(x, skips[-1 - i])
        return x


class DeepUnet(nn.Module):
    def __init__(self, kernel_size, n_blocks, en_de_layers=5, inter_layers=4, in_channels=1, en_out_channels=16):
        super().__init__()
        self.encoder = RmvpeEncoder(in_channels, en_de_layers, kernel_size, n_blocks, en_out_channels)
        c = self.encoder.out_channel
        self.intermediate = Intermediate(c // 2, c, inter_layers, n_blocks)
        self.decoder = RmvpeDecoder(c, en_de_layers, kernel_size, n_blocks)

    def forward(self, x):
        x, skips = self.encoder(x)
        return self.decoder(self.intermediate(x), skips)


class BiGRU(nn.Module):
    def __init__(self, n_in, n_hidden, n_layers):
        super().__init__()
        self.gru = nn.GRU(n_in, n_hidden, num_layers=n_layers, batch_first=True, bidirectional=True)

    def forward(self, x):
        return self.gru(x)[0]


class E2E(nn.Module):
    """RMVPE network; RVC builds it as E2E(4, 1, (2, 2)). Input log-mel [B, 128, T] with T a multiple
    of 32; output salience [B, T, 360] after a sigmoid."""

    def __init__(self, n_blocks=4, n_gru=1, kernel_size=(2, 2), en_de_layers=5, inter_layers=4,
                 in_channels=1, en_out_channels=16):
        super().__init__()
        self.unet = DeepUnet(kernel_size, n_blocks, en_de_layers, inter_layers, in_channels, en_out_channels)
        self.cnn = nn.Conv2d(en_out_channels, 3, (3, 3), padding=(1, 1))
        self.fc = nn.Sequential(BiGRU(3 * 128, 256, n_gru), nn.Linear(512, 360), nn.Dropout(0.25), nn.Sigmoid())

    def forward(self, mel):
        x = mel.transpose(-1, -2).unsqueeze(1)  # [B, 1, T, 128]
        x = self.cnn(self.unet(x)).transpose(1, 2).flatten(-2)  # [B, T, 3*128]
        return self.fc(x)


RMVPE_CENTS = 20.0 * np.arange(360) + 1997.3794084376191  # bin centres in cents re 10 Hz


@torch.no_grad()
def rmvpe_salience(model, mel):
    """mel [B, 128, T] -> salience [B, T, 360]: reflect-pad time to a multiple of 32, run, crop."""
    T = mel.shape[-1]
    pad = 32 * ((T - 1) // 32 + 1) - T
    if pad:
        mel = F.pad(mel, (0, pad), mode="reflect")
    return model(mel)[:, :T]


def decode_salience(sal, threshold=0.03):
    """to_local_average_cents then cents -> Hz: salience-weighted mean of the bin cents over the 9 bins
    around the argmax (zero-padded at the edges); frames whose peak <= threshold are unvoiced (0 Hz).
    sal: np [T, 360]. Returns (f0 Hz [T], cents [T])."""
    sal = np.asarray(sal, dtype=np.float64)
    T = sal.shape[0]
    center = np.argmax(sal, axis=1) + 4
    padded = np.pad(sal, ((0, 0), (4, 4)))
    cents_p = np.pad(RMVPE_CENTS, (4, 4))
    idx = center[:, None] + np.arange(-4, 5)[None, :]
    w = padded[np.arange(T)[:, None], idx]
    c = cents_p[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        cents = (w * c).sum(1) / w.sum(1)
    cents[padded.max(1) <= threshold] = 0
    f0 = 10 * 2 ** (cents / 1200)
    f0[f0 == 10] = 0
    return f0, cents


# ---------------------------------------------------------------------------------------------
# HuBERT base (fairseq hubert.py / wav2vec2.py), as used by RVC (hubert_base.pt = ContentVec)
# ---------------------------------------------------------------------------------------------

HUBERT_CONV = [(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2  # (dim, kernel, stride)


class FeatureExtractor(nn.Module):
    """7 bias-free convs; GroupNorm(512 groups) after the first, GELU after each.
    Keys conv_layers.i.0 (conv) and conv_layers.0.2 (norm): indices follow fairseq's Sequentials."""

    def __init__(self):
        super().__init__()
        layers = []
        cin = 1
        for i, (dim, k, s) in enumerate(HUBERT_CONV):
            mods = [nn.Conv1d(cin, dim, k, stride=s, bias=False), nn.Dropout(0.0)]
            if i == 0:
                mods.append(nn.GroupNorm(dim, dim, affine=True))
            mods.append(nn.GELU())
            layers.append(nn.Sequential(*mods))
            cin = dim
        self.conv_layers = nn.ModuleList(layers)

    def forward(self, wav):
        x = wav.unsqueeze(1)
        for layer in self.conv_layers:
            x = layer(x)
        return x  # [B, 512, T]


class SamePadGelu(nn.Module):
    """Drops the last output step (even kernel) then GELU: the tail of fairseq's pos_conv Sequential."""

    def forward(self, x):
        return F.gelu(x[:, :, :-1])


class SelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        H, D = self.heads, C // self.heads
        q = (self.q_proj(x) * D ** -0.5).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, H, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, H, D).transpose(1, 2)
        p = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        return self.out_proj((p @ v).transpose(1, 2).reshape(B, T, C))


class EncoderLayer(nn.Module):
    """Post-LN layer (layer_norm_first False in HuBERT base)."""

    def __init__(self, dim=768, ffn=3072, heads=12):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn)
        self.fc2 = nn.Linear(ffn, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x):
        x = self.self_attn_layer_norm(x + self.self_attn(x))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, dim=768, layers=12, ffn=3072, heads=12, pos_kernel=128, pos_groups=16):
        super().__init__()
        conv = nn.Conv1d(dim, dim, pos_kernel, padding=pos_kernel // 2, groups=pos_groups)
        self.pos_conv = nn.Sequential(weight_norm(conv, name="weight", dim=2), SamePadGelu())
        self.layers = nn.ModuleList([EncoderLayer(dim, ffn, heads) for _ in range(layers)])
        self.layer_norm = nn.LayerNorm(dim)

    def forward(self, x, n_layers, taps=None):
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        x = self.layer_norm(x)  # post-LN model: the encoder norm comes before the layers
        for i in range(n_layers):
            x = self.layers[i](x)
            if taps is not None:
                taps["layer%d" % (i + 1)] = x
        return x


class HubertBase(nn.Module):
    """HuBERT base with fairseq's module names. extract(wav, output_layer) returns the output of
    transformer layer output_layer (1-based) as [B, T, 768]; RVC v1 then applies final_proj (-> 256)
    to layer 9, RVC v2 takes layer 12 as is."""

    def __init__(self, dim=768, layers=12, ffn=3072, heads=12, final_dim=256, num_classes=504):
        super().__init__()
        self.feature_extractor = FeatureExtractor()
        self.layer_norm = nn.LayerNorm(512)
        self.post_extract_proj = nn.Linear(512, dim)
        self.mask_emb = nn.Parameter(torch.empty(dim).uniform_())
        self.encoder = TransformerEncoder(dim, layers, ffn, heads)
        self.final_proj = nn.Linear(dim, final_dim)
        self.label_embs_concat = nn.Parameter(torch.empty(num_classes, final_dim).uniform_())

    @torch.no_grad()
    def extract(self, wav, output_layer, taps=None):
        f = self.feature_extractor(wav).transpose(1, 2)  # [B, T, 512]
        if taps is not None:
            taps["conv_features"] = f
        x = self.post_extract_proj(self.layer_norm(f))
        return self.encoder(x, output_layer, taps)


def hubert_cfg():
    """The model section of a fairseq HuBERT base config, as a plain dict (no fairseq classes)."""
    return {"_name": "hubert", "extractor_mode": "default", "encoder_layers": 12, "encoder_embed_dim": 768,
            "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12, "activation_fn": "gelu",
            "layer_type": "transformer", "final_dim": 256, "layer_norm_first": False,
            "conv_feature_layers": "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2", "conv_bias": False,
            "conv_pos": 128, "conv_pos_groups": 16, "untie_final_proj": False, "normalize": False,
            "label_rate": 50, "sample_rate": 16000}


def count_params(module, skip_prefix=None):
    return sum(p.numel() for n, p in module.named_parameters()
               if skip_prefix is None or not n.startswith(skip_prefix))
