"""The configuration of the front end and of the CRNN: plain frozen dataclasses with no torch, so command-line
options and tools can name their defaults without importing the model."""

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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        data["frontend"] = FrontendConfig(**data["frontend"])
        for key in ("labels", "mood_names", "channels", "tag_names"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)
