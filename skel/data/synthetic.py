"""The embedded default dataset ``synthetic``: seeded NTU-like actions from forward kinematics.

Derived and plotted in ``notebooks/01_data.ipynb``. No files are read: every sample is generated
from the seed, so the notebooks, the tests and ``python -m skel run-all`` run without any data.

Generative model (one sample, one person; two-person classes repeat it per actor)
----------------------------------------------------------------------------------
* **Skeleton.** The NTU 25-joint tree rooted at the spine base (joint 0). Each joint ``c`` with
  kinematic parent ``p(c)`` has a rest offset ``o_c`` (metres, body frame: x = the person's right,
  y = up, z = backwards, so the person faces -z like a Kinect user facing the camera). A subject
  scales the offsets: overall height ``h ~ U(0.88, 1.10)`` times per-segment factors (torso,
  shoulder width, arms, legs) ``~ N(1, 0.05)``. Hand tip and thumb hang off the hand joint.
* **Forward kinematics.** Every bone carries a rotation ``L_c(t) = R_y(a_y) R_z(a_z) R_x(a_x)``
  (pitch first: +x flexes a hanging limb forward; +z abducts a right limb outwards; left limbs
  use the mirrored ``-a_y, -a_z``). Global rotations and positions follow the tree::

      G_0 = L_0,   G_c = G_{p(c)} L_c,   x_0 = r(t),   x_c = x_{p(c)} + G_c o_c

  so each bone length ``|x_c - x_{p(c)}| = |o_c|`` is constant in time (the tests check this).
  Feet stay on the floor: the body is lifted or lowered each frame so that its lowest foot joint
  is at the straight-leg floor height (a squat therefore lowers the hips).
* **Actions.** A class is a set of joint-angle curves ``a(s)`` of the action time ``s in [0, 1]``:
  an envelope ``e(s)`` (smooth ramp in and out), oscillations ``sin(2 pi k s + phi)`` with
  ``k = f_class * tempo * duration`` cycles, or pulses ``sin(pi (k s mod 1))^q`` (raise, punch,
  bow, squat, kick). Each class has variants (low or high wave, straight or hooked punch,
  shallow or deep squat, ...): amplitudes are ``amplitude_subject * effort * U(...)`` with
  ``amplitude ~ U(0.65, 1.25)`` per subject and ``effort ~ U(0.75, 1.15)`` per sample. Punch and
  kick use the subject's dominant side (left for ~15% of subjects), the other side 15% of the
  time, by mirroring the angle curves (swap left / right bones, negate the y and z angles).
  Similar pairs are deliberate: wave left / right (mirror images), punch / clap / push (arms
  forward), squat / bow (forward flexion), handshake / hug / push (two actors closing in).
* **Time.** ``T_i ~ U{length}`` frames at 30 fps; the action fills a fraction ``U(0.3, 1)`` of
  them from a random start (the rest is standing); the action time is warped
  ``s -> s + w sin(2 pi s) / (2 pi)`` with ``w ~ U(-0.9, 0.9)`` (monotone, so speed varies within
  a sample).
* **Shared regularities.** Every actor also breathes and sways (small slow root rotations), turns
  the head, slowly turns the body (``N(0, 10)`` degrees over the clip); with probability
  ``fidget`` an arm the action leaves free holds a resting pose (hand on hip, at the chest,
  behind the back) and, independently, one arm makes an unrelated gesture (hand towards the
  face, a partial raise) somewhere in the clip: motion structure common to all classes,
  learnable without labels, and a nuisance for a classifier.
* **Scene and camera.** A lone actor faces the camera, turned by ``N(0, 15)`` degrees; two actors
  (the partner another subject of the same split) face each other ``d ~ U(0.9, 1.5)`` m apart
  and close in as the action needs (hands meet, a hug, a push that sends the partner back). The
  scene is turned about the vertical axis by a view yaw ``~ U(-view, view)`` degrees and tilted
  by ``N(0, 5)`` degrees.
* **Sensor.** Gaussian jitter ``N(0, noise^2)`` on every coordinate, and Kinect-like glitches:
  ``Poisson(glitch * T_i)`` events per actor, each moving one distal joint (hand, foot, head, ...)
  by ``N(0, 0.1^2)`` m or snapping it onto its parent for 1-5 frames.
* **Preprocessing as NTU.** Everything is translated so that joint 1 (spine middle) of actor 1 in
  the first frame is the origin; a one-person sample's second actor is all zeros.

Subjects: ``num_subjects`` are drawn from ``seed``; a seeded permutation gives half (rounded up)
to ``train`` and the rest to ``test`` (disjoint, like a cross-subject benchmark). Samples of each
split come from their own seeded stream, so the same seed gives bit-identical arrays.
"""

from __future__ import annotations

import numpy as np

from skel.data.base import SkeletonData
from skel.data.layout import NTU25

__all__ = ["CLASS_NAMES", "TWO_PERSON", "load_synthetic"]

CLASS_NAMES = [
    "wave right hand", "wave left hand", "raise both arms", "clap", "punch", "bow",
    "squat", "kick", "march in place", "handshake", "hug", "push partner",
]
TWO_PERSON = frozenset({9, 10, 11})

_FPS = 30.0
_FRACTION = (0.3, 1.0)  # share of the clip the action fills
_WARP = 0.9  # largest time-warp coefficient w (below 1 keeps time monotone)
_BODY_YAW = 15.0  # degrees, s.d. of how far a lone actor turns away from the camera
_DEG = np.pi / 180.0

# (child, kinematic parent) in an order where parents come first. Differs from NTU25.bones only
# in the hand: hand tip and thumb both hang off the hand (rigid, so their distance is constant too).
_TREE = (
    (1, 0), (20, 1), (2, 20), (3, 2),
    (4, 20), (5, 4), (6, 5), (7, 6), (21, 7), (22, 7),
    (8, 20), (9, 8), (10, 9), (11, 10), (23, 11), (24, 11),
    (12, 0), (13, 12), (14, 13), (15, 14),
    (16, 0), (17, 16), (18, 17), (19, 18),
)
# Rest offsets of the right side (x > 0) and the midline, metres, from NTU sample bone lengths.
_REST = {
    1: (0.0, 0.27, 0.0), 20: (0.0, 0.21, 0.0), 2: (0.0, 0.07, 0.0), 3: (0.0, 0.13, 0.0),
    8: (0.145, -0.03, 0.01), 9: (0.0, -0.22, 0.0), 10: (0.0, -0.22, 0.0), 11: (0.0, -0.06, 0.0),
    23: (0.0, -0.05, 0.0), 24: (-0.025, -0.02, -0.03),
    16: (0.075, -0.03, 0.0), 17: (0.0, -0.33, 0.0), 18: (0.0, -0.33, 0.0), 19: (0.0, -0.04, -0.09),
}
_MIRROR = {8: 4, 9: 5, 10: 6, 11: 7, 23: 21, 24: 22, 16: 12, 17: 13, 18: 14, 19: 15}
# Limb bones by side: (girdle, upper arm, forearm) and (thigh, shin, foot), named by child joint.
_ARM = {+1: (9, 10), -1: (5, 6)}
_LEG = {+1: (17, 18, 19), -1: (13, 14, 15)}
_FEET = [14, 15, 18, 19]
_DISTAL = np.array([3, 6, 7, 10, 11, 14, 15, 18, 19, 21, 22, 23, 24])
_KIN_PARENT = dict(_TREE)
# Segment groups scaled together per subject.
_SEGMENTS = {"torso": (1, 20, 2, 3), "shoulders": (4, 8, 12, 16), "arms": (5, 6, 7, 9, 10, 11, 21, 22, 23, 24),
             "legs": (13, 14, 15, 17, 18, 19)}


def _rest_offsets() -> np.ndarray:
    off = np.zeros((25, 3))
    for c, v in _REST.items():
        off[c] = v
        if c in _MIRROR:
            off[_MIRROR[c]] = (-v[0], v[1], v[2])
    return off


def _rot(a: np.ndarray) -> np.ndarray:
    """``a: (..., 3)`` angles (x, y, z) in radians -> ``(..., 3, 3)`` ``R_y R_z R_x``."""
    cx, cy, cz = np.cos(a[..., 0]), np.cos(a[..., 1]), np.cos(a[..., 2])
    sx, sy, sz = np.sin(a[..., 0]), np.sin(a[..., 1]), np.sin(a[..., 2])
    # R_z R_x, then R_y mixes rows 0 and 2.
    m0 = np.stack([cz, -sz * cx, sz * sx], -1)
    m1 = np.stack([sz, cz * cx, -cz * sx], -1)
    m2 = np.stack([np.zeros_like(cx), sx, cx], -1)
    return np.stack([cy[..., None] * m0 + sy[..., None] * m2, m1,
                     -sy[..., None] * m0 + cy[..., None] * m2], -2)


def _forward_kinematics(angles: np.ndarray, root: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Joint positions in the body frame.

    angles: (B, T, 25, 3) bone rotations (index = child joint; index 0 = whole body),
    root: (B, T, 3) root translation, offsets: (B, 25, 3) rest offsets -> (B, T, 25, 3).
    """
    glob = [None] * 25
    glob[0] = _rot(angles[:, :, 0])
    pos = [None] * 25
    pos[0] = root
    for c, p in _TREE:
        a = angles[:, :, c]
        glob[c] = glob[p] @ _rot(a) if np.any(a) else glob[p]
        o = offsets[:, None, None, c]  # (B, 1, 1, 3): G o as three multiply-adds, faster than einsum here
        pos[c] = pos[p] + glob[c][..., 0] * o[..., 0] + glob[c][..., 1] * o[..., 1] + glob[c][..., 2] * o[..., 2]
    return np.stack(pos, 2)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class _Batch:
    """The per-sample time variables of one class batch, all ``(n, 1)`` or ``(n, T)``."""

    def __init__(self, rng: np.random.Generator, n: int, T: int, lengths: np.ndarray, tempo: np.ndarray,
                 amp: np.ndarray):
        self.rng, self.n = rng, n
        frac = rng.uniform(_FRACTION[0], _FRACTION[1], n)
        dur = frac * lengths
        start = rng.uniform(0.0, 1.0, n) * (lengths - dur)
        warp = rng.uniform(-_WARP, _WARP, n)
        s = np.clip((np.arange(T)[None] - start[:, None]) / dur[:, None], 0.0, 1.0)
        self.s = s + warp[:, None] * np.sin(2 * np.pi * s) / (2 * np.pi)
        ramp = rng.uniform(0.12, 0.3, n)[:, None]
        self.env = _smoothstep(self.s / ramp) * _smoothstep((1.0 - self.s) / ramp)
        self.seconds = (dur / _FPS)[:, None]
        self.tempo = tempo[:, None]
        self.amp = amp[:, None] * rng.uniform(0.75, 1.15, (n, 1))  # subject style times effort

    def u(self, lo: float, hi: float) -> np.ndarray:
        """Per-sample uniform ``(n, 1)``."""
        return self.rng.uniform(lo, hi, (self.n, 1))

    def deg(self, lo: float, hi: float) -> np.ndarray:
        """Per-sample amplitude in radians, scaled by the subject's style."""
        return self.u(lo, hi) * self.amp * _DEG

    def osc(self, hz: float) -> np.ndarray:
        """``sin(2 pi k s + phi)`` with ``k`` cycles at about ``hz`` times the subject's tempo."""
        k = hz * self.tempo * self.seconds * self.u(0.85, 1.15)
        return np.sin(2 * np.pi * k * self.s + self.u(0, 2 * np.pi))

    def pulses(self, count: tuple[int, int], sharp: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
        """``count`` pulses over the action: (height in [0, 1], phase within the pulse in [0, 1])."""
        k = self.rng.integers(count[0], count[1] + 1, (self.n, 1))
        phase = (self.s * k) % 1.0
        phase = np.where(self.s >= 1.0, 0.0, phase)
        return np.sin(np.pi * phase) ** sharp, phase


def _arm(A: np.ndarray, side: int, x=0.0, y=0.0, z=0.0, elbow=0.0, fore_z=0.0) -> None:
    """Add to one arm of ``A (n, T, 25, 3)``: upper-arm (x, y, z) and forearm (elbow, -, fore_z)."""
    upper, fore = _ARM[side]
    A[:, :, upper, 0] += x
    A[:, :, upper, 1] += side * y
    A[:, :, upper, 2] += side * z
    A[:, :, fore, 0] += elbow
    A[:, :, fore, 2] += side * fore_z


def _leg(A: np.ndarray, side: int, hip=0.0, knee=0.0, foot=0.0) -> None:
    """Hip flexion (thigh forward), knee flexion (shin backward) and foot pitch of one leg."""
    thigh, shin, ft = _LEG[side]
    A[:, :, thigh, 0] += hip
    A[:, :, shin, 0] -= knee
    A[:, :, ft, 0] += foot


def _spine(A: np.ndarray, bow=0.0, twist=0.0, head=0.0) -> None:
    """Forward flexion of the spine (radians, + = bow), its twist, and a head nod."""
    A[:, :, 1, 0] -= 0.6 * bow
    A[:, :, 20, 0] -= 0.4 * bow
    A[:, :, 1, 1] += twist
    A[:, :, 3, 0] -= head


# Each action adds joint-angle curves to A (n, P, T, 25, 3) and root moves to R (n, P, T, 3),
# body frame (forward = -z).

def _wave(b: _Batch, A, R, side: int) -> None:
    # From a low wave at shoulder height to a high one overhead; the forearm swings about the vertical.
    e, lift = b.env, b.deg(60, 135)
    _arm(A[:, 0], side, x=e * b.deg(0, 35), z=e * lift,
         fore_z=e * (np.pi * b.u(130, 170) / 180 - lift) + e * b.deg(15, 35) * b.osc(1.6))


def _raise_arms(b: _Batch, A, R) -> None:
    # Raised sideways (abduction) or forwards (flexion) or in between, once or twice.
    h, _ = b.pulses((1, 2))
    lift, mix = h * b.deg(120, 170), b.u(0, 1)
    for side in (1, -1):
        _arm(A[:, 0], side, x=lift * mix + h * b.deg(0, 15), z=lift * (1 - mix), elbow=h * b.deg(0, 30))


def _clap(b: _Batch, A, R) -> None:
    e, o = b.env, b.osc(2.5)
    flex, elbow, close = b.deg(25, 85), b.deg(30, 80), b.deg(10, 30)
    for side in (1, -1):
        _arm(A[:, 0], side, x=e * flex, y=e * (close + b.deg(8, 18) * o), elbow=e * elbow)


def _punch(b: _Batch, A, R) -> None:
    # Guard, then 1-3 fast extensions of the right arm (straight or hooked).
    e = b.env
    h, _ = b.pulses((1, 3), sharp=4.0)
    for side in (1, -1):
        _arm(A[:, 0], side, x=e * b.deg(15, 55), y=e * b.deg(0, 25), elbow=e * b.deg(80, 130))
    hook = b.u(0, 1)
    _arm(A[:, 0], 1, x=h * b.deg(25, 60), y=h * hook * b.deg(0, 40), z=h * hook * b.deg(0, 50),
         elbow=-h * (1 - 0.6 * hook) * b.deg(70, 115))
    _spine(A[:, 0], twist=h * b.deg(0, 20))


def _bow(b: _Batch, A, R) -> None:
    h, _ = b.pulses((1, 2))
    bow = h * b.deg(20, 70)
    _spine(A[:, 0], bow=bow, head=h * b.deg(0, 25))
    for side in (1, -1):
        _arm(A[:, 0], side, x=b.u(0.4, 1.0) * bow, y=h * b.deg(0, 30), elbow=h * b.deg(0, 40))
        _leg(A[:, 0], side, hip=h * b.deg(0, 20), knee=h * b.deg(0, 20))
    R[:, 0, :, 2] += h * b.u(0.0, 0.08)


def _squat(b: _Batch, A, R) -> None:
    # Shallow to deep; arms forward for balance or hands kept low.
    h, _ = b.pulses((1, 2))
    hip = h * b.deg(35, 95)
    knee = hip * b.u(1.2, 1.6)
    for side in (1, -1):
        _leg(A[:, 0], side, hip=hip, knee=knee, foot=knee - hip)
        _arm(A[:, 0], side, x=h * b.deg(0, 90), elbow=h * b.deg(0, 60))
    _spine(A[:, 0], bow=h * b.deg(10, 40))


def _kick(b: _Batch, A, R) -> None:
    h, phase = b.pulses((1, 2))
    knee = np.clip(1.0 - 2.0 * phase, 0.0, 1.0) * np.sin(np.pi * phase)  # bent on the way up, straight at the top
    _leg(A[:, 0], 1, hip=h * b.deg(30, 85), knee=knee * b.deg(40, 100))
    _arm(A[:, 0], 1, x=-h * b.deg(0, 20), z=h * b.deg(0, 30), elbow=h * b.deg(0, 60))
    _arm(A[:, 0], -1, x=h * b.deg(0, 30), z=h * b.deg(0, 30), elbow=h * b.deg(0, 60))
    _spine(A[:, 0], bow=-h * b.deg(0, 15))


def _march(b: _Batch, A, R) -> None:
    e, o = b.env, b.osc(0.9)
    hip, knee, swing = b.deg(20, 55), b.deg(30, 80), b.deg(5, 35)
    for side, sign in ((1, 1.0), (-1, -1.0)):
        up = e * np.maximum(sign * o, 0.0)
        _leg(A[:, 0], side, hip=up * hip, knee=up * knee, foot=up * b.deg(0, 20))
        _arm(A[:, 0], side, x=-sign * e * swing * o, elbow=e * b.deg(10, 60))


def _face_each_other(b: _Batch, R, gap: np.ndarray) -> None:
    """Close a ``gap (n, T)`` metres: each actor walks half of it forward (-z)."""
    R[:, :, :, 2] -= 0.5 * gap[:, None]


def _handshake(b: _Batch, A, R) -> None:
    e = b.env
    _face_each_other(b, R, _smoothstep(b.s / 0.35) * np.maximum(b.gap - b.u(0.6, 1.0), 0.0))
    pump = b.osc(2.0)
    for p in (0, 1):
        _arm(A[:, p], 1, x=e * (b.deg(35, 55) + b.deg(4, 10) * pump), y=e * b.deg(5, 20), elbow=e * b.deg(25, 50))


def _hug(b: _Batch, A, R) -> None:
    e = b.env
    _face_each_other(b, R, _smoothstep(b.s / 0.5) * (b.gap - b.u(0.35, 0.7)))
    for p in (0, 1):
        for side in (1, -1):
            _arm(A[:, p], side, x=e * b.deg(60, 90), y=e * b.deg(20, 45), z=e * b.deg(10, 35),
                 elbow=e * b.deg(50, 85))
        _spine(A[:, p], bow=e * b.deg(0, 15))


def _push(b: _Batch, A, R) -> None:
    e = b.env
    contact = b.u(0.35, 0.6)
    hit = _smoothstep((b.s - contact) / 0.12) * (1.0 - _smoothstep((b.s - contact - 0.35) / 0.2))
    approach = _smoothstep(b.s / 0.4) * np.maximum(b.gap - b.u(0.55, 0.9), 0.0)
    R[:, 0, :, 2] -= approach  # actor 1 walks in; the partner waits
    for side in (1, -1):
        _arm(A[:, 0], side, x=e * b.deg(30, 45) + hit * b.deg(30, 50), elbow=e * b.deg(80, 110) - hit * b.deg(60, 95))
    _spine(A[:, 0], bow=hit * b.deg(5, 20))
    react = _smoothstep((b.s - contact) / b.u(0.15, 0.35))
    R[:, 1, :, 2] += react * b.u(0.15, 0.5)  # pushed backwards
    _spine(A[:, 1], bow=-react * b.deg(5, 20) * (1.0 - _smoothstep((b.s - contact - 0.3) / 0.3)))
    for side in (1, -1):
        _arm(A[:, 1], side, x=react * b.deg(10, 40), z=react * b.deg(5, 25), elbow=react * b.deg(20, 60))


_ACTIONS = [
    lambda b, A, R: _wave(b, A, R, 1), lambda b, A, R: _wave(b, A, R, -1), _raise_arms, _clap, _punch, _bow,
    _squat, _kick, _march, _handshake, _hug, _push,
]


# Arms an action leaves free, per class and actor: they may hold a resting pose (hand on hip, at
# the chest, behind the back) for the whole clip.
_FREE_ARMS = {0: ((-1,),), 1: ((1,),), 5: ((1, -1),), 6: ((1, -1),), 7: ((1, -1),), 9: ((-1,), (-1,))}


_PERM = np.arange(25)
for _r, _l in _MIRROR.items():
    _PERM[_r], _PERM[_l] = _l, _r
# Punch and kick: either limb (wave left / right keep their side: they are the mirror-image pair).
_EITHER_SIDE = frozenset({4, 7})


def _mirror(A: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left-right mirror image of angle curves ``A (..., 25, 3)`` and root moves ``R (..., 3)``."""
    return A[..., _PERM, :] * np.array([1.0, -1.0, -1.0]), R * np.array([-1.0, 1.0, 1.0])


def _fidget(b: _Batch, A: np.ndarray, label: int, rate: float) -> None:
    """Motion shared by all classes, added to ``A (n, P, T, 25, 3)``.

    Breathing sway, head turns and a slow turn of the body for everyone; with probability
    ``rate`` a free arm holds a resting pose, and (independently, same probability) one arm
    makes a stray gesture (hand towards the face, a partial raise) somewhere in the clip.
    """
    t = b.s * b.seconds
    free = _FREE_ARMS.get(label, ((), ()))
    for p in range(A.shape[1]):
        for axis in (0, 2):
            A[:, p, :, 0, axis] += b.deg(0.5, 2.5) * np.sin(2 * np.pi * b.u(0.2, 0.5) * t + b.u(0, 2 * np.pi))
        A[:, p, :, 3, 1] += b.deg(0, 25) * np.sin(2 * np.pi * b.u(0.1, 0.4) * t + b.u(0, 2 * np.pi))
        A[:, p, :, 0, 1] += b.rng.normal(0, 10, (b.n, 1)) * _DEG * b.s
        for side in free[p] if p < len(free) else ():
            rest = (b.rng.random((b.n, 1)) < rate).astype(float)
            _arm(A[:, p], side, x=rest * b.deg(-35, 75), y=rest * b.deg(0, 40), z=rest * b.deg(0, 45),
                 elbow=rest * b.deg(0, 150))
        does = b.rng.random((b.n, 1)) < rate
        mid, width = b.u(0.1, 0.9), b.u(0.2, 0.5)
        g = does * np.clip(1.5 - 1.5 * np.abs(b.s - mid) / width, 0.0, 1.0) ** 2
        side = np.where(b.rng.random(b.n) < 0.5, 1, -1)
        gesture = dict(x=g * b.deg(20, 80), z=g * b.deg(0, 40), elbow=g * b.deg(30, 130))
        for sd in (1, -1):
            sub = A[side == sd, p]
            _arm(sub, sd, **{k: v[side == sd] for k, v in gesture.items()})
            A[side == sd, p] = sub


def _subjects(seed: int, num_subjects: int) -> dict[str, np.ndarray]:
    """Per-subject body and style parameters, ``(num_subjects, ...)``; subject ids are 1-based."""
    rng = np.random.default_rng([seed, 0x5EB])
    n = num_subjects
    scale = rng.uniform(0.88, 1.10, n)
    seg = np.ones((n, 25))
    for joints in _SEGMENTS.values():
        seg[:, list(joints)] = rng.normal(1.0, 0.05, (n, 1))
    offsets = _rest_offsets()[None] * (scale[:, None] * seg)[:, :, None]
    posture = np.zeros((n, 25, 3))
    for side in (1, -1):
        upper, fore = _ARM[side]
        posture[:, upper, 2] = side * rng.uniform(4, 14, n) * _DEG
        posture[:, fore, 0] = rng.uniform(5, 25, n) * _DEG
        posture[:, _LEG[side][1], 0] = -rng.uniform(0, 6, n) * _DEG
    posture[:, 1, 0] = rng.normal(0, 3, n) * _DEG
    posture[:, 3, 0] = rng.normal(0, 5, n) * _DEG
    return {
        "offsets": offsets, "posture": posture,
        "amp": rng.uniform(0.65, 1.25, n), "hand": np.where(rng.random(n) < 0.85, 1, -1), "tempo": rng.uniform(0.8, 1.25, n),
        "split": rng.permutation(n) + 1,
    }


def _generate_class(rng, label: int, subj: dict, sid: np.ndarray, partner: np.ndarray, lengths: np.ndarray, view: float,
                    noise: float, glitch: float, fidget: float) -> tuple[np.ndarray, np.ndarray]:
    """All samples of one class: ``(n, T_max, M=2, 25, 3)`` centred camera coordinates, and yaw (deg)."""
    n, T = len(sid), int(lengths.max())
    P = 2 if label in TWO_PERSON else 1
    k = sid - 1
    b = _Batch(rng, n, T, lengths, subj["tempo"][k], subj["amp"][k])
    A = np.zeros((n, P, T, 25, 3))
    R = np.zeros((n, P, T, 3))
    b.gap = rng.uniform(0.9, 1.5, (n, 1))  # starting distance between two actors, metres
    _ACTIONS[label](b, A, R)
    if label in _EITHER_SIDE:  # done with the dominant limb, the other one now and then
        flip = (subj["hand"][k] < 0) != (rng.random(n) < 0.15)
        A[flip], R[flip] = _mirror(A[flip], R[flip])
    A += subj["posture"][k][:, None, None]
    _fidget(b, A, label, fidget)

    offsets = np.repeat(subj["offsets"][k], P, axis=0)
    if P == 2:  # the partner: another subject of the same split
        offsets[1::2] = subj["offsets"][partner - 1]
    pos = _forward_kinematics(A.reshape(n * P, T, 25, 3), R.reshape(n * P, T, 3), offsets)
    floor = offsets[:, [16, 17, 18, 19], 1].sum(-1)  # straight-leg height of the foot joint
    pos[..., 1] += (floor[:, None] - pos[:, :, _FEET, 1].min(-1))[..., None]
    pos = pos.reshape(n, P, T, 25, 3)

    # A lone actor roughly faces the camera; two actors face each other, actor 1 on either side.
    left = np.where(rng.random((n, 1)) < 0.5, 1.0, -1.0)
    facing = rng.normal(0, _BODY_YAW, (n, P)) + (np.array([-90.0, 90.0]) * left if P == 2 else 0.0)
    turn = _rot(np.stack([np.zeros_like(facing), facing * _DEG, np.zeros_like(facing)], -1))  # (n, P, 3, 3)
    pos = pos @ np.swapaxes(turn, -1, -2)[:, :, None]
    if P == 2:
        pos[..., 0] += (np.concatenate([-b.gap, b.gap], 1) * left / 2)[:, :, None, None]
    yaw = rng.uniform(-view, view, n)
    tilt = rng.normal(0, 5, n)
    cam = _rot(np.stack([tilt, yaw, np.zeros(n)], -1) * _DEG)  # (n, 3, 3)
    pos = pos @ np.swapaxes(cam, -1, -2)[:, None, None]

    pos += rng.normal(0.0, noise, pos.shape) if noise > 0 else 0.0
    _glitches(rng, pos, lengths, glitch)
    pos -= pos[:, 0, 0, 1][:, None, None, None, :]
    out = np.zeros((n, T, 2, 25, 3), dtype=np.float32)
    out[:, :, :P] = pos.transpose(0, 2, 1, 3, 4)
    return out, yaw


def _glitches(rng, pos: np.ndarray, lengths: np.ndarray, rate: float) -> None:
    """Kinect-like tracking errors in place on ``pos (n, P, T, 25, 3)``: jumps or joints snapped onto their parent."""
    if rate <= 0:
        return
    n, P = pos.shape[:2]
    counts = rng.poisson(rate * np.repeat(lengths, P))
    for flat in np.flatnonzero(counts):
        i, p = divmod(int(flat), P)
        for _ in range(counts[flat]):
            joint = int(rng.choice(_DISTAL))
            t0 = int(rng.integers(0, lengths[i]))
            t1 = min(t0 + int(rng.integers(1, 6)), int(lengths[i]))
            if rng.random() < 0.5:
                pos[i, p, t0:t1, joint] += rng.normal(0.0, 0.1, 3)
            else:
                pos[i, p, t0:t1, joint] = pos[i, p, t0:t1, _KIN_PARENT[joint]]


def load_synthetic(split: str, seed: int = 0, num_per_class: int = 40, num_subjects: int = 20,
                   length: tuple[int, int] = (40, 90), noise: float = 0.015, glitch: float = 0.01,
                   view: float = 45.0, fidget: float = 0.6) -> SkeletonData:
    """Generate one split of the synthetic NTU-like dataset (12 classes, 3 of them two-person).

    Args:
        split: ``"train"`` or ``"test"`` (disjoint subjects drawn from the same ``seed``).
        seed: everything is a function of it; the same seed gives bit-identical arrays.
        num_per_class: samples per class in this split (classes are balanced).
        num_subjects: subjects in the population (at least 2), split half / half.
        length: inclusive ``(min, max)`` frames per sample.
        noise: standard deviation of the Gaussian jitter, metres.
        glitch: expected tracking glitches per frame per actor.
        view: largest view yaw in degrees (uniform in ``[-view, view]``).
        fidget: probability that an actor makes an unrelated arm gesture.

    Returns:
        :class:`SkeletonData` named ``"synthetic"``; samples ``(3, T_i, 25, 2)`` float32, metres,
        NTU25 layout; ``meta``: ``subject`` (1-based), ``view`` (yaw bin 0 / 1 / 2 = thirds of
        ``[-view, view]``), ``persons`` (1 or 2); names ``syn_sSS_aAA_rRRR``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"synthetic: unknown split {split!r}; accepted: train, test")
    if not (isinstance(length, (tuple, list)) and len(length) == 2 and 1 <= int(length[0]) <= int(length[1])):
        raise ValueError(f"synthetic: option 'length' must be (min, max) frames with 1 <= min <= max, got {length!r}")
    if num_subjects < 2:
        raise ValueError(f"synthetic: option 'num_subjects' must be at least 2, got {num_subjects}")
    if num_per_class < 1:
        raise ValueError(f"synthetic: option 'num_per_class' must be at least 1, got {num_per_class}")
    for key, value in (("noise", noise), ("glitch", glitch), ("view", view), ("fidget", fidget)):
        if value < 0:
            raise ValueError(f"synthetic: option {key!r} must be >= 0, got {value}")

    subj = _subjects(seed, num_subjects)
    half = (num_subjects + 1) // 2
    pool = np.sort(subj["split"][:half] if split == "train" else subj["split"][half:])
    rng = np.random.default_rng([seed, 1 if split == "train" else 2])
    lo, hi = int(length[0]), int(length[1])

    samples, labels, names = [], [], []
    meta: dict[str, list[int]] = {"subject": [], "view": [], "persons": []}
    for label in range(len(CLASS_NAMES)):
        r = np.arange(num_per_class)
        idx = (r + label) % len(pool)
        sid, rep = pool[idx], r // len(pool)
        lengths = rng.integers(lo, hi + 1, num_per_class)
        shift = rng.integers(1, len(pool), num_per_class) if len(pool) > 1 else 0  # partner != actor 1
        partner = pool[(idx + shift) % len(pool)]
        x, yaw = _generate_class(rng, label, subj, sid, partner, lengths, float(view), float(noise), float(glitch),
                                 float(fidget))
        bins = np.clip(np.floor((yaw + view) / (2 * view) * 3), 0, 2).astype(int) if view > 0 else np.ones(len(yaw), int)
        for i in range(num_per_class):
            samples.append(np.ascontiguousarray(x[i, :lengths[i]].transpose(3, 0, 2, 1)))
            labels.append(label)
            names.append(f"syn_s{sid[i]:02d}_a{label + 1:02d}_r{rep[i]:03d}")
            meta["subject"].append(int(sid[i]))
            meta["view"].append(int(bins[i]))
            meta["persons"].append(2 if label in TWO_PERSON else 1)
    return SkeletonData(
        name="synthetic", split=split, samples=samples, labels=np.array(labels), layout=NTU25,
        class_names=list(CLASS_NAMES), meta={k: np.array(v, dtype=np.int64) for k, v in meta.items()}, names=names,
    )
