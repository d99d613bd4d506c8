"""An independent PyTorch reference of lemur's field-level emulator, written from
Jamieson et al. 2024: the styled convolution (modulation, demodulation), the residual / down / up
blocks and the 3-level styled V-Net, with parameter names of the authors' checkpoints
(<block>.<layer>.{style_weight, style_bias, weight, bias}; layers convs.0, convs.2, skip).

Used by tests/python/check_emulator.py and check_convert.py (random weights saved as an
authors'-format checkpoint, state = {'model': state_dict}) and by tools/bench/torch_emulator.py.
Run with /usr/bin/python3 (Debian's python3-torch)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

LEAKY_SLOPE = 0.01
DEMOD_EPS = 1e-8
HALO = 48

# (name, kind, cin, cout, keep, concat_from, concat_crop, final activation); channels in units of
# the width, -1 for the in/out channels (Jamieson et al. 2024)
BLOCKS = [
    ("conv_l00", "R", -1, 1, False, None, 0, True),
    ("conv_l01", "R", 1, 1, True, None, 0, True),
    ("down_l0", "D", 1, 1, False, None, 0, True),
    ("conv_l1", "R", 1, 1, True, None, 0, True),
    ("down_l1", "D", 1, 1, False, None, 0, True),
    ("conv_l2", "R", 1, 1, True, None, 0, True),
    ("down_l2", "D", 1, 1, False, None, 0, True),
    ("conv_c", "R", 1, 1, False, None, 0, True),
    ("up_r2", "U", 1, 1, False, "conv_l2", 4, True),
    ("conv_r2", "R", 2, 1, False, None, 0, True),
    ("up_r1", "U", 1, 1, False, "conv_l1", 16, True),
    ("conv_r1", "R", 2, 1, False, None, 0, True),
    ("up_r0", "U", 1, 1, False, "conv_l01", 40, True),
    ("conv_r00", "R", 2, 1, False, None, 0, True),
    ("conv_r01", "R", 1, -1, False, None, 0, False),
]


def crop(t, c):
    """Remove c cells from both ends of every spatial axis."""
    return t[..., c:-c, c:-c, c:-c] if c > 0 else t


class StyledConv3d(nn.Module):
    """u = style_weight s + style_bias; W' = W u (input channels); W'' = W' / sqrt(sum W'^2 + eps)
    per output channel; y = conv(x, W'', stride) + b. Transposed: W is [cin, cout, k, k, k]."""

    def __init__(self, cin, cout, kernel, stride=1, transposed=False, n_style=2):
        super().__init__()
        self.stride, self.transposed = stride, transposed
        shape = (cin, cout) if transposed else (cout, cin)
        self.style_weight = nn.Parameter(torch.empty(cin, n_style))
        self.style_bias = nn.Parameter(torch.empty(cin))
        self.weight = nn.Parameter(torch.empty(*shape, kernel, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(cout))

    def forward(self, x, s):
        u = F.linear(s, self.style_weight, self.style_bias)
        if self.transposed:
            w = self.weight * u.reshape(-1, 1, 1, 1, 1)
            w = w / torch.sqrt(w.pow(2).sum(dim=(0, 2, 3, 4), keepdim=True) + DEMOD_EPS)
            return F.conv_transpose3d(x, w, self.bias, stride=self.stride)
        w = self.weight * u.reshape(1, -1, 1, 1, 1)
        w = w / torch.sqrt(w.pow(2).sum(dim=(1, 2, 3, 4), keepdim=True) + DEMOD_EPS)
        return F.conv3d(x, w, self.bias, stride=self.stride)


class ResBlock(nn.Module):
    """conv3 -> LReLU -> conv3, plus the 1x1 skip cropped by 2, summed, then LReLU (or none)."""

    def __init__(self, cin, cout, act=True):
        super().__init__()
        mid = max(cin, cout)
        self.convs = nn.ModuleList([StyledConv3d(cin, mid, 3), nn.LeakyReLU(LEAKY_SLOPE),
                                    StyledConv3d(mid, cout, 3)])
        self.skip = StyledConv3d(cin, cout, 1)
        self.act = act

    def forward(self, x, s):
        h = F.leaky_relu(self.convs[0](x, s), LEAKY_SLOPE)
        y = self.convs[2](h, s) + crop(self.skip(x, s), 2)
        return F.leaky_relu(y, LEAKY_SLOPE) if self.act else y


class ResampleBlock(nn.Module):
    """Styled k=2 s=2 convolution (down) or transposed convolution (up), then LReLU."""

    def __init__(self, cin, cout, up):
        super().__init__()
        self.convs = nn.ModuleList([StyledConv3d(cin, cout, 2, 2, up), nn.LeakyReLU(LEAKY_SLOPE)])

    def forward(self, x, s):
        return F.leaky_relu(self.convs[0](x, s), LEAKY_SLOPE)


class StyledVNet(nn.Module):
    """The V-Net y = net(x, s) + crop(x, 48)."""

    def __init__(self, width=64, in_chan=3, out_chan=3):
        super().__init__()
        self.order = []
        for name, kind, ci, co, keep, cfrom, ccrop, act in BLOCKS:
            cin = in_chan if ci < 0 else ci * width
            cout = out_chan if co < 0 else co * width
            block = ResBlock(cin, cout, act) if kind == "R" else ResampleBlock(cin, cout, kind == "U")
            self.add_module(name, block)
            self.order.append((name, keep, cfrom, ccrop))

    def forward(self, x, s):
        kept, t = {}, x
        for name, keep, cfrom, ccrop in self.order:
            t = getattr(self, name)(t, s)
            if keep:
                kept[name] = t
            if cfrom:
                t = torch.cat([crop(kept[cfrom], ccrop), t], dim=1)
        return t + crop(x, HALO)


def emulate(net, psi, omega_m, D):
    """Ψ_NL = 6 net(Ψ D / 6, s), s = [(Ωm - 0.3) 5, D - 1]; psi [1, 3, n, n, n] in Mpc/h. D may be
    a forward-mode dual number (then the tangent of the result is dΨ_NL/dD). Constants enter as
    tensors of psi's dtype: PyTorch 1.13 promotes the tangent of (0-dim dual) op (Python float)
    to float64."""
    def c(v):
        return torch.tensor(v, dtype=psi.dtype)
    D = D if torch.is_tensor(D) else c(D)
    x = psi * (D * c(1.0 / 6.0))
    s = torch.stack([D * c(0.0) + c((omega_m - 0.3) * 5.0), D - c(1.0)])
    return net(x, s) * c(6.0)


def emulate_jvp(net, psi, omega_m, D):
    """(Ψ_NL, dΨ_NL/dD) by PyTorch's forward-mode AD (torch.autograd.forward_ad)."""
    import torch.autograd.forward_ad as fwAD
    with torch.no_grad(), fwAD.dual_level():
        Dd = fwAD.make_dual(torch.tensor(D, dtype=psi.dtype), torch.tensor(1.0, dtype=psi.dtype))
        out = fwAD.unpack_dual(emulate(net, psi, omega_m, Dd))
        return out.primal, out.tangent


def init_random(net, seed):
    """Deterministic random parameters: W ~ U(-1,1) sqrt(3 / fan_in), style_weight ~ U(-0.5,
    0.5), style_bias ~ 1 + U(-0.1, 0.1), b ~ U(-0.2, 0.2) / sqrt(fan_in)."""
    g = torch.Generator().manual_seed(seed)

    def uni(shape, scale, offset=0.0):
        return (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * scale + offset

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, StyledConv3d):
                fan_in = m.weight[0].numel() if not m.transposed else m.weight[:, 0].numel()
                m.weight.copy_(uni(m.weight.shape, (3.0 / fan_in) ** 0.5))
                m.style_weight.copy_(uni(m.style_weight.shape, 0.5))
                m.style_bias.copy_(uni(m.style_bias.shape, 0.1, 1.0))
                m.bias.copy_(uni(m.bias.shape, 0.2 / fan_in ** 0.5))
    return net
