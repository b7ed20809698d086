"""The configuration of the front end, of the CRNN and of a training run: plain frozen dataclasses with no torch,
so command-line options and tools can name their defaults without importing the model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from streamtag.train.data import GEMS_MOODS


@dataclass(frozen=True)
class FrontendConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_samples: int = 512
    n_mels: int = 96
    fmin_hz: float = 0.0
    fmax_hz: float | None = None  # None: Nyquist

    def n_frames(self, n_samples: int) -> int:
        """Frames the front end yields for ``n_samples`` of audio (no centring)."""
        if n_samples < self.n_fft:
            return 0
        return 1 + (n_samples - self.n_fft) // self.hop_samples


@dataclass(frozen=True)
class ModelConfig:
    labels: tuple[str, ...]
    mood_names: tuple[str, ...] = GEMS_MOODS
    window_samples: int = 66150  # 3.0 s at 22050 Hz
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    gru_hidden: int = 64
    embedding_dim: int = 64
    dropout: float = 0.3
    tag_names: tuple[str, ...] = ()  # the teacher's tags: a "tags" output when not empty
    teacher_features: int = 0  # width of the teacher's feature vector the embedding learns to predict (0: none)
    # What each head ("genre", "moods", "taste") reads, where not the embedding: "summary" (the CNN's time mean
    # and max), "bands" (the same per frequency band), "pooled" (the GRU's), or several joined by "+"; taste
    # may read "genre", the genre probabilities (see streamtag.train.crnn). Set by streamtag.train.probe_heads,
    # which says why.
    head_inputs: tuple[tuple[str, str], ...] = ()

    def input_of(self, head: str) -> str:
        return dict(self.head_inputs).get(head, "embedding")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        data["frontend"] = FrontendConfig(**data["frontend"])
        for key in ("labels", "mood_names", "channels", "tag_names"):
            data[key] = tuple(data.get(key, ()))
        # checkpoints before 2.2.0 named the heads that read the summary
        inputs = data.pop("head_inputs", None) or [(head, "summary") for head in data.get("summary_heads", ())]
        data.pop("summary_heads", None)
        data["head_inputs"] = tuple((head, source) for head, source in inputs)
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe: schedule, loss weights, augmentation (augment.py), averaging and stopping."""

    epochs: int = 50
    batch_size: int = 32
    crops_per_track: int = 6
    learning_rate: float = 2e-3
    weight_decay: float = 1e-2
    warmup_epochs: int = 2
    patience: int = 20
    seed: int = 0
    label_smoothing: float = 0.1
    taste_weight: float = 1.0
    mood_weight: float = 1.0
    tag_weight: float = 5.0  # the tag BCE is a mean over 50 mostly small targets: weighted up to count
    feature_weight: float = 1.0  # MSE on the teacher's standardised features
    gain_db: float = 6.0  # random gain of +-6 dB: adds a constant to the dB log-mel
    eq_db: float = 6.0  # random smooth EQ curve of +-6 dB: another mix, master or microphone
    eq_points: int = 5
    shift_bins: int = 2  # roll the mel axis by up to 2 bins: a small pitch shift
    stretch: float = 0.15  # crops of (1 +- 0.15) x the window, resampled to it: tempo changes
    time_mask_frames: int = 16
    freq_mask_bins: int = 12
    mixup_alpha: float = 0.3
    eval_hop_frames: int = 64  # validation windows every 1.5 s
    average_epochs: int = 0  # >0: the final model is the mean of the weights after each of the last N epochs
    bn_batches: int = 40  # training batches that re-estimate BatchNorm statistics for averaged weights
    max_minutes: float | None = None
    device: str = "cpu"  # "cuda" where a GPU is available
