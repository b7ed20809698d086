"""The classic time-averaged feature vector of GTZAN's feature table, in numpy and scipy.

``features_30_sec.csv`` (the per-clip table that circulates with GTZAN) was computed with a librosa of the
0.7/0.8 era. This module reproduces its columns from audio so that the feature baseline can be trained on the
table and applied to any audio, and so that the baseline sees exactly the features the table describes. What
each column is (checked against the table on the 10 real GTZAN clips, see tests/train/test_features.py):

- one STFT for everything: periodic Hann window, ``n_fft`` 2048, hop 512, ``center=True`` with *reflect*
  padding (that librosa's default; librosa >= 0.10 pads with zeros, which moves the variances by ~1e-3);
- ``chroma_stft``: the power spectrum through a chroma filter bank shifted by the tuning estimated from
  parabolic-interpolated spectral peaks (150-4000 Hz), each frame scaled to a maximum of 1; mean and variance
  over all 12 x frames values;
- ``rms``: RMS of un-windowed 2048-sample frames of the reflect-padded signal;
- ``spectral_centroid`` / ``spectral_bandwidth`` (p = 2) / ``rolloff`` (85 %): from the magnitude spectrum;
- ``zero_crossing_rate``: sign changes per 2048-sample frame of the edge-padded signal, counted over the 2047
  sample pairs but divided by 2048 (librosa pads the crossing indicator with one False);
- ``harmony`` / ``perceptr``: mean and variance of the *samples* of the harmonic and percussive waveforms from
  median-filter HPSS (31 frames / 31 bins, soft masks with power 2) and an inverse STFT that stops at
  ``hop * (frames - 1)`` samples, the rest of the clip zero-filled (that librosa's istft had no ``length``);
- ``tempo``: librosa.beat.beat_track's tempo: the median-aggregated log-mel onset envelope, an 8 s
  autocorrelation tempogram averaged over the clip, weighted by a log-normal prior around 120 BPM;
- ``mfcc1..20``: DCT-II (orthonormal) of the 128-band Slaney mel power spectrum in dB, clipped at 80 dB below
  the clip's maximum; mean and variance per coefficient.

Variances are population variances (``ddof=0``). The Hann window, the FFT bin frequencies and the mel filter
bank are spectral.py's, the ones the CRNN's front end uses.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from streamtag.train.spectral import POWER_FLOOR, fft_frequencies_hz, hann_window, mel_filterbank

SAMPLE_RATE_HZ = 22050
N_FFT = 2048
HOP_SAMPLES = 512
N_MELS = 128
N_MFCC = 20
N_CHROMA = 12
TOP_DB = 80.0
ROLLOFF_FRACTION = 0.85
ZCR_ZERO_THRESHOLD = 1e-10  # samples this close to zero count as zero (no sign), as librosa.zero_crossings
HPSS_KERNEL = 31  # median filter length in frames (harmonic) and in bins (percussive)
MEDIAN_ROWS_PER_BLOCK = 16  # bounds the sliding-window copy (rows x frames x kernel) to a few MB

# Tuning estimate (librosa.estimate_tuning / piptrack defaults).
PEAK_FMIN_HZ = 150.0
PEAK_FMAX_HZ = 4000.0
PEAK_THRESHOLD = 0.1  # peaks below this fraction of the frame's maximum are ignored
TUNING_RESOLUTION_BINS = 0.01
A4_HZ = 440.0

# Chroma filter bank (librosa.filters.chroma defaults).
CHROMA_CENTER_OCTAVE = 5.0
CHROMA_OCTAVE_WIDTH = 2.0

# Tempo (librosa.beat.beat_track -> tempo defaults).
TEMPO_START_BPM = 120.0
TEMPO_STD_OCTAVES = 1.0
TEMPO_MAX_BPM = 320.0
TEMPO_AC_WINDOW_S = 8.0
ONSET_LAG_FRAMES = 1

FRAME_FEATURES = (
    "chroma_stft", "rms", "spectral_centroid", "spectral_bandwidth", "rolloff", "zero_crossing_rate",
    "harmony", "perceptr",
)
MFCC_NAMES = tuple(f"mfcc{i}" for i in range(1, N_MFCC + 1))

# The table's feature columns in its order (its "filename", "length" and "label" are not features).
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{name}_{stat}" for name in FRAME_FEATURES for stat in ("mean", "var")),
    "tempo",
    *(f"{name}_{stat}" for name in MFCC_NAMES for stat in ("mean", "var")),
)


def frame_count(n_samples: int, *, hop_samples: int = HOP_SAMPLES) -> int:
    """Frames of a centred analysis: one per hop, starting at sample 0."""
    return 1 + n_samples // hop_samples


def _frames(padded: np.ndarray, *, frame_samples: int, hop_samples: int) -> np.ndarray:
    """(frames, frame_samples) view of ``padded``."""
    return sliding_window_view(padded, frame_samples)[::hop_samples]


def stft(samples: np.ndarray, *, n_fft: int = N_FFT, hop_samples: int = HOP_SAMPLES) -> np.ndarray:
    """Complex spectrum (1 + n_fft // 2, frames) of the reflect-padded, centred signal."""
    padded = np.pad(np.asarray(samples, dtype=np.float64), n_fft // 2, mode="reflect")
    frames = _frames(padded, frame_samples=n_fft, hop_samples=hop_samples) * hann_window(n_fft)
    return scipy.fft.rfft(frames, axis=-1).T


def istft_fixed_length(
    spectrum: np.ndarray, *, n_samples: int, n_fft: int = N_FFT, hop_samples: int = HOP_SAMPLES
) -> np.ndarray:
    """Inverse of ``stft`` by weighted overlap-add, as the table's librosa did it: the centred output stops at
    ``hop * (frames - 1)`` samples and is then zero-filled (or cut) to ``n_samples``."""
    if n_fft % hop_samples:
        raise ValueError(f"n_fft ({n_fft}) must be a multiple of hop_samples ({hop_samples})")
    window = hann_window(n_fft)
    frames = scipy.fft.irfft(spectrum.T, n=n_fft, axis=-1) * window  # (frames, n_fft)
    n_frames = frames.shape[0]
    overlap = n_fft // hop_samples
    signal = np.zeros((n_frames + overlap - 1, hop_samples))
    weight = np.zeros_like(signal)
    for k in range(overlap):  # each frame's k-th hop-long block lands k hops after the frame's start
        signal[k : k + n_frames] += frames[:, k * hop_samples : (k + 1) * hop_samples]
        weight[k : k + n_frames] += window[k * hop_samples : (k + 1) * hop_samples] ** 2
    signal, weight = signal.ravel(), weight.ravel()
    nonzero = weight > np.finfo(weight.dtype).tiny
    signal[nonzero] /= weight[nonzero]
    centred = signal[n_fft // 2 : n_fft // 2 + hop_samples * (n_frames - 1)]
    out = np.zeros(n_samples)
    kept = min(n_samples, centred.size)
    out[:kept] = centred[:kept]
    return out


def _median_filter_rows(values: np.ndarray, *, kernel: int) -> np.ndarray:
    """Running median along the last axis with mirrored edges (scipy.ndimage's "reflect" mode).

    np.partition over a sliding window is ~2.5x faster than scipy.ndimage.median_filter here and gives the
    same values; rows are processed in blocks so the window copy stays small.
    """
    half = kernel // 2
    padded = np.pad(values, ((0, 0), (half, kernel - 1 - half)), mode="symmetric")
    out = np.empty_like(values)
    for start in range(0, values.shape[0], MEDIAN_ROWS_PER_BLOCK):
        windows = sliding_window_view(padded[start : start + MEDIAN_ROWS_PER_BLOCK], kernel, axis=-1)
        out[start : start + MEDIAN_ROWS_PER_BLOCK] = np.partition(windows, half, axis=-1)[..., half]
    return out


def _soft_mask(target: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Wiener-style mask target^2 / (target^2 + other^2); 0.5 where both are zero (librosa.util.softmask).
    The complementary mask is 1 minus this one."""
    scale = np.maximum(target, other)
    silent = scale < np.finfo(scale.dtype).tiny
    scale[silent] = 1.0
    target_power = (target / scale) ** 2
    other_power = (other / scale) ** 2
    mask = target_power / np.where(silent, 1.0, target_power + other_power)
    mask[silent] = 0.5
    return mask


def hpss(spectrum: np.ndarray, *, kernel: int = HPSS_KERNEL) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive complex spectra by median filtering across time and across frequency.

    The medians run in float32, as the table's librosa did: they only select values, and it halves the time.
    """
    magnitude = np.abs(spectrum).astype(np.float32)
    harmonic = _median_filter_rows(magnitude, kernel=kernel)
    percussive = np.ascontiguousarray(_median_filter_rows(np.ascontiguousarray(magnitude.T), kernel=kernel).T)
    harmonic_mask = _soft_mask(harmonic.astype(np.float64), percussive.astype(np.float64))
    return spectrum * harmonic_mask, spectrum * (1.0 - harmonic_mask)


def _normalize_columns(values: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Divide each column by its norm; all-zero columns stay zero (librosa.util.normalize)."""
    norm = np.where(norm < np.finfo(values.dtype).tiny, 1.0, norm)
    return values / norm


def power_to_db(power: np.ndarray, *, top_db: float = TOP_DB) -> np.ndarray:
    """10 log10 of power re 1, floored at POWER_FLOOR and at ``top_db`` below the array's maximum."""
    db = 10.0 * np.log10(np.maximum(POWER_FLOOR, power))
    return np.maximum(db, db.max() - top_db)


def _hz_to_octaves(hz: np.ndarray, *, tuning_bins: float = 0.0, bins_per_octave: int = N_CHROMA) -> np.ndarray:
    """Octave number with C0-ish origin: A4 (tuned) is octave 4.75."""
    a4_hz = A4_HZ * 2.0 ** (tuning_bins / bins_per_octave)
    return np.log2(hz / (a4_hz / 16))


def estimate_tuning_bins(
    power: np.ndarray, *, sample_rate_hz: float, n_fft: int = N_FFT, bins_per_octave: int = N_CHROMA
) -> float:
    """Deviation from A440 tuning in fractions of a chroma bin, from the strongest spectral peaks.

    Peaks (local maxima above PEAK_THRESHOLD of the frame's maximum, 150-4000 Hz) are refined by parabolic
    interpolation; those at or above the median peak height vote in a histogram of their offset from the
    nearest semitone. librosa.estimate_tuning on the power spectrum.
    """
    fft_hz = fft_frequencies_hz(sample_rate=sample_rate_hz, n_fft=n_fft)
    in_band = (fft_hz >= PEAK_FMIN_HZ) & (fft_hz < min(PEAK_FMAX_HZ, sample_rate_hz / 2))
    above = power * (power > PEAK_THRESHOLD * power.max(axis=0, keepdims=True))
    edge = np.pad(above, ((1, 1), (0, 0)), mode="edge")
    is_peak = (above > edge[:-2]) & (above >= edge[2:]) & in_band[:, None]
    peak_bin, peak_frame = np.nonzero(is_peak)
    if peak_bin.size == 0:
        return 0.0
    # Peaks lie within 150-4000 Hz, so both neighbours exist.
    below = power[peak_bin - 1, peak_frame]
    centre = power[peak_bin, peak_frame]
    over = power[peak_bin + 1, peak_frame]
    curvature = over + below - 2.0 * centre
    slope = (over - below) / 2.0
    # A shift beyond one bin means the parabola does not describe this peak: keep the bin itself.
    usable = np.abs(slope) < np.abs(curvature)
    shift = np.where(usable, -slope / np.where(usable, curvature, 1.0), 0.0)
    peak_hz = (peak_bin + shift) * sample_rate_hz / n_fft
    height = centre + 0.5 * slope * shift
    strong = (height >= np.median(height)) & (peak_hz > 0)
    if not strong.any():
        return 0.0
    residual = np.mod(bins_per_octave * _hz_to_octaves(peak_hz[strong]), 1.0)
    residual[residual >= 0.5] -= 1.0
    edges = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / TUNING_RESOLUTION_BINS)) + 1)
    counts, _ = np.histogram(residual, edges)
    return float(edges[np.argmax(counts)])


def chroma_filterbank(
    *, sample_rate_hz: float, n_fft: int = N_FFT, tuning_bins: float = 0.0, n_chroma: int = N_CHROMA
) -> np.ndarray:
    """(n_chroma, 1 + n_fft // 2) Gaussian bumps around each pitch class, weighted towards octave 5, C first
    (Dan Ellis's fft2chromamx, as librosa.filters.chroma)."""
    hz = np.arange(1, n_fft) * (sample_rate_hz / n_fft)
    bins = n_chroma * _hz_to_octaves(hz, tuning_bins=tuning_bins, bins_per_octave=n_chroma)
    bins = np.concatenate(([bins[0] - 1.5 * n_chroma], bins))  # the DC bin sits 1.5 octaves below bin 1
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    half = np.round(n_chroma / 2)
    distance = np.remainder(bins[None, :] - np.arange(n_chroma)[:, None] + half + 10 * n_chroma, n_chroma) - half
    weights = np.exp(-0.5 * (2.0 * distance / widths[None, :]) ** 2)
    weights = weights / np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights *= np.exp(-0.5 * ((bins / n_chroma - CHROMA_CENTER_OCTAVE) / CHROMA_OCTAVE_WIDTH) ** 2)[None, :]
    weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)  # rows start at C rather than A
    return weights[:, : 1 + n_fft // 2]


def chroma(power: np.ndarray, *, sample_rate_hz: float, n_fft: int = N_FFT) -> np.ndarray:
    """(12, frames) chromagram, each frame scaled to a maximum of 1."""
    tuning = estimate_tuning_bins(power, sample_rate_hz=sample_rate_hz, n_fft=n_fft)
    raw = chroma_filterbank(sample_rate_hz=sample_rate_hz, n_fft=n_fft, tuning_bins=tuning) @ power
    return _normalize_columns(raw, np.max(np.abs(raw), axis=0, keepdims=True))


def spectral_centroid_hz(magnitude: np.ndarray, *, fft_hz: np.ndarray) -> np.ndarray:
    weights = _normalize_columns(magnitude, magnitude.sum(axis=0, keepdims=True))
    return fft_hz @ weights


def spectral_bandwidth_hz(magnitude: np.ndarray, *, fft_hz: np.ndarray, centroid_hz: np.ndarray) -> np.ndarray:
    """Second-order spread of the magnitude spectrum around its centroid."""
    weights = _normalize_columns(magnitude, magnitude.sum(axis=0, keepdims=True))
    deviation = fft_hz[:, None] - centroid_hz[None, :]
    return np.sqrt(np.sum(weights * deviation**2, axis=0))


def spectral_rolloff_hz(
    magnitude: np.ndarray, *, fft_hz: np.ndarray, fraction: float = ROLLOFF_FRACTION
) -> np.ndarray:
    """Lowest bin frequency at which the cumulative magnitude reaches ``fraction`` of the frame's total."""
    cumulative = np.cumsum(magnitude, axis=0)
    reached = cumulative >= fraction * cumulative[-1:]
    return fft_hz[np.argmax(reached, axis=0)]


def rms(samples: np.ndarray, *, frame_samples: int = N_FFT, hop_samples: int = HOP_SAMPLES) -> np.ndarray:
    """RMS of un-windowed frames of the reflect-padded, centred signal."""
    padded = np.pad(np.asarray(samples, dtype=np.float64), frame_samples // 2, mode="reflect")
    frames = _frames(padded, frame_samples=frame_samples, hop_samples=hop_samples)
    return np.sqrt(np.mean(frames**2, axis=-1))


def zero_crossing_rate(
    samples: np.ndarray, *, frame_samples: int = N_FFT, hop_samples: int = HOP_SAMPLES
) -> np.ndarray:
    """Sign changes per frame of the edge-padded, centred signal, divided by the frame length."""
    padded = np.pad(np.asarray(samples, dtype=np.float64), frame_samples // 2, mode="edge")
    signs = np.signbit(np.where(np.abs(padded) <= ZCR_ZERO_THRESHOLD, 0.0, padded))
    changes = np.concatenate(([0], np.cumsum(signs[1:] != signs[:-1])))
    starts = np.arange(frame_count(samples.size, hop_samples=hop_samples)) * hop_samples
    # A frame's pairs are (start, start + 1) .. (start + frame - 2, start + frame - 1).
    return (changes[starts + frame_samples - 1] - changes[starts]) / frame_samples


def onset_strength(log_mel_db: np.ndarray, *, n_fft: int = N_FFT, hop_samples: int = HOP_SAMPLES) -> np.ndarray:
    """Median over mel bands of the positive dB rise from the previous frame, delayed to line up with the
    centred frames (librosa.onset.onset_strength with aggregate=np.median, as beat_track calls it)."""
    rise = np.maximum(0.0, log_mel_db[:, ONSET_LAG_FRAMES:] - log_mel_db[:, :-ONSET_LAG_FRAMES])
    envelope = np.median(rise, axis=0)
    delay_frames = ONSET_LAG_FRAMES + n_fft // (2 * hop_samples)
    return np.concatenate((np.zeros(delay_frames), envelope))[: log_mel_db.shape[1]]


def tempo_bpm(onset_envelope: np.ndarray, *, sample_rate_hz: float, hop_samples: int = HOP_SAMPLES) -> float:
    """The tempo librosa.beat.beat_track reports: the lag maximising the clip-averaged, max-normalised local
    autocorrelation of the onset envelope times a log-normal prior around TEMPO_START_BPM."""
    if not onset_envelope.any():
        return 0.0  # beat_track's answer for a clip without onsets
    window_frames = int(TEMPO_AC_WINDOW_S * sample_rate_hz // hop_samples)
    half = window_frames // 2
    padded = np.pad(onset_envelope, half, mode="linear_ramp", end_values=0)
    frames = _frames(padded, frame_samples=window_frames, hop_samples=1)[: onset_envelope.size]
    frames = frames * hann_window(window_frames)
    n_pad = scipy.fft.next_fast_len(2 * window_frames - 1, real=True)
    autocorrelation = scipy.fft.irfft(np.abs(scipy.fft.rfft(frames, n=n_pad, axis=-1)) ** 2, n=n_pad, axis=-1)
    autocorrelation = autocorrelation[:, :window_frames]
    peak = np.max(np.abs(autocorrelation), axis=-1, keepdims=True)
    tempogram = autocorrelation / np.where(peak < np.finfo(peak.dtype).tiny, 1.0, peak)  # silent windows stay 0
    lags = np.arange(window_frames)
    with np.errstate(divide="ignore"):
        bpm = 60.0 * sample_rate_hz / (hop_samples * lags)  # lag 0 -> inf
        prior = np.exp(-0.5 * ((np.log2(bpm) - np.log2(TEMPO_START_BPM)) / TEMPO_STD_OCTAVES) ** 2)
    prior[: int(np.argmax(bpm < TEMPO_MAX_BPM))] = 0.0
    best_lag = int(np.argmax(tempogram.mean(axis=0) * prior))
    return TEMPO_START_BPM if best_lag == 0 else float(bpm[best_lag])


def clip_features(samples: np.ndarray, *, sample_rate_hz: float = SAMPLE_RATE_HZ) -> dict[str, float]:
    """The table's feature columns for one mono clip, in FEATURE_NAMES order.

    The table was computed at 22050 Hz; resample other audio to SAMPLE_RATE_HZ first for comparable values.
    """
    samples = np.asarray(samples, dtype=np.float64)
    spectrum = stft(samples)
    magnitude = np.abs(spectrum)
    power = magnitude**2
    fft_hz = fft_frequencies_hz(sample_rate=sample_rate_hz, n_fft=N_FFT)
    mel = mel_filterbank(sample_rate=sample_rate_hz, n_fft=N_FFT, n_mels=N_MELS, dtype=np.float64)
    log_mel_db = power_to_db(mel @ power)
    centroid_hz = spectral_centroid_hz(magnitude, fft_hz=fft_hz)
    harmonic, percussive = hpss(spectrum)
    per_frame = {
        "chroma_stft": chroma(power, sample_rate_hz=sample_rate_hz),
        "rms": rms(samples),
        "spectral_centroid": centroid_hz,
        "spectral_bandwidth": spectral_bandwidth_hz(magnitude, fft_hz=fft_hz, centroid_hz=centroid_hz),
        "rolloff": spectral_rolloff_hz(magnitude, fft_hz=fft_hz),
        "zero_crossing_rate": zero_crossing_rate(samples),
        "harmony": istft_fixed_length(harmonic, n_samples=samples.size),
        "perceptr": istft_fixed_length(percussive, n_samples=samples.size),
    }
    mfcc = scipy.fft.dct(log_mel_db, type=2, norm="ortho", axis=0)[:N_MFCC]
    per_frame.update(zip(MFCC_NAMES, mfcc, strict=True))
    values = {
        f"{name}_{stat}": float(reduce(series))
        for name, series in per_frame.items()
        for stat, reduce in (("mean", np.mean), ("var", np.var))  # np.var: population variance, as the table
    }
    values["tempo"] = tempo_bpm(onset_strength(log_mel_db), sample_rate_hz=sample_rate_hz)
    return {name: values[name] for name in FEATURE_NAMES}


def feature_vector(samples: np.ndarray, *, sample_rate_hz: float = SAMPLE_RATE_HZ) -> np.ndarray:
    """``clip_features`` as a float64 vector in FEATURE_NAMES order."""
    return np.array(list(clip_features(samples, sample_rate_hz=sample_rate_hz).values()))
