"""The CRNN: convolutional blocks over the log-mel, a bidirectional GRU over time, and four named heads.

Shapes (batch B, window of 66150 samples at 22050 Hz, stft hop 512 -> T = 128 frames, 96 mels):
  audio (B, 66150) -> LogMel (B, 128, 96) -> CNN (B, 128 ch, 16, 3) -> GRU over 16 steps -> pooled (B, 256)
  -> embedding (B, D, L2-normalised), genre (B, G), taste (B,), moods (B, M), tags (B, T) where T > 0
Heads may read other features instead (``config.head_inputs``): the CNN's time mean and max, averaged over the
3 frequency bands (``summary``, B x 2 x 128) or per band (``bands``, B x 2 x 128 x 3), the GRU's time mean and
max (``pooled``, B x 2 x 128), or several of these side by side (``bands+pooled``). Crowd taste may read the genre
probabilities instead (``genre``): its head then holds the like rate of each genre, and taste is their mean
weighted by the probabilities.

The tag head and the teacher-feature head learn from a pretrained teacher (see streamtag.train.distill);
the feature head only shapes the embedding during training and is not exported.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from streamtag.train.config import ModelConfig
from streamtag.train.frontend import LogMel

# Rates of 0 or 1 have infinite logits: clip them to what a few hundred listeners can tell apart.
RATE_EPSILON = 0.01
GENRE_PRIOR = "genre"  # the taste head's input when it reads the genre probabilities


def summary_of(band_means: torch.Tensor) -> torch.Tensor:
    """The CNN's output maps averaged over the frequency bands (B, C, T'), which the GRU reads too: their time
    mean and max (B, 2C)."""
    return torch.cat([band_means.mean(dim=2), band_means.amax(dim=2)], dim=1)


def bands_of(maps: torch.Tensor) -> torch.Tensor:
    """The time mean and max of each band of the CNN's output maps (B, 2CF', channel-major)."""
    return torch.cat([maps.mean(dim=2).flatten(1), maps.amax(dim=2).flatten(1)], dim=1)


def pooled_of(seq: torch.Tensor) -> torch.Tensor:
    """The GRU's outputs (B, T', 2H): their time mean and max (B, 4H)."""
    return torch.cat([seq.mean(dim=1), seq.amax(dim=1)], dim=1)


def sources_of(head_input: str) -> list[str]:
    """The features a head input names: ``bands+pooled`` reads the bands and the pooled GRU side by side."""
    return head_input.split("+")


def _side_by_side(features: list[torch.Tensor]) -> torch.Tensor:
    return features[0] if len(features) == 1 else torch.cat(features, dim=1)  # no Concat node in the graph for one


def _conv_block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
    )


class CRNN(nn.Module):
    """Takes log-mels (``forward_logmel``, for training on cached features) or raw audio (``forward``)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = LogMel(config.frontend)
        self.input_norm = nn.BatchNorm2d(config.frontend.n_mels)  # per-mel-bin standardisation, learned stats
        pools = [(2, 2), (2, 2), (2, 2), (1, 4)]  # time is halved 3 times (128 -> 16), frequency 96 -> 3
        blocks, c_in = [], 1
        for c_out, pool in zip(config.channels, pools, strict=True):
            blocks.append(_conv_block(c_in, c_out, pool))
            c_in = c_out
        self.cnn = nn.Sequential(*blocks)
        self.gru = nn.GRU(c_in, config.gru_hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(config.dropout)
        self.embed = nn.Linear(4 * config.gru_hidden, config.embedding_dim)
        self.summary_dim = 2 * c_in
        self.widths = {"embedding": config.embedding_dim, "summary": self.summary_dim,
                       "bands": self.summary_dim * (config.frontend.n_mels // 32),  # the pools divide the mels by 32
                       "pooled": 4 * config.gru_hidden, GENRE_PRIOR: len(config.labels)}
        self.genre_head = nn.Linear(self.head_width("genre"), len(config.labels))
        self.taste_head = nn.Linear(self.head_width("taste"), 1)
        self.mood_head = nn.Linear(self.head_width("moods"), len(config.mood_names))
        self.tag_head = nn.Linear(config.embedding_dim, len(config.tag_names)) if config.tag_names else None
        self.feature_head = nn.Linear(config.embedding_dim, config.teacher_features) if config.teacher_features else None

    def head_width(self, head: str) -> int:
        return sum(self.widths[source] for source in sources_of(self.config.input_of(head)))

    def forward_logmel(self, logmel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Log-mel (B, T, n_mels) -> logits and embedding; the losses use logits for numerical stability."""
        x = self.input_norm(logmel.transpose(1, 2).unsqueeze(-1)).squeeze(-1)  # (B, n_mels, T)
        maps = self.cnn(x.transpose(1, 2).unsqueeze(1))  # (B, C, T', F')
        x = maps.mean(dim=3)  # (B, C, T')
        seq, _ = self.gru(x.transpose(1, 2))  # (B, T', 2H)
        pooled = pooled_of(seq)  # (B, 4H)
        hidden = torch.relu(self.embed(self.dropout(pooled)))  # (B, D)
        embedding = nn.functional.normalize(hidden, dim=1)
        summary = summary_of(x)
        # One dropout per feature that a head reads, in this order: the random stream a seed gives training
        # stays the one the shipped models were trained with. The bands are computed only where a head reads them.
        inputs = {"embedding": self.dropout(hidden)}
        taste_reads_genre = self.config.input_of("taste") == GENRE_PRIOR
        heads = ("genre", "moods") if taste_reads_genre else ("genre", "taste", "moods")
        read_sources = {source for head in heads for source in sources_of(self.config.input_of(head))}
        if "summary" in read_sources:
            inputs["summary"] = self.dropout(summary)
        if "bands" in read_sources:
            inputs["bands"] = self.dropout(bands_of(maps))
        if "pooled" in read_sources:
            inputs["pooled"] = self.dropout(pooled)
        read = {head: _side_by_side([inputs[source] for source in sources_of(self.config.input_of(head))])
                for head in heads}
        features = inputs["embedding"]
        genre_logits = self.genre_head(read["genre"])
        if taste_reads_genre:  # the head holds the genre like rates: it yields a rate, not a logit
            rate = self.taste_head(torch.softmax(genre_logits, dim=1)).clamp(RATE_EPSILON, 1 - RATE_EPSILON)
            taste_logit = torch.log(rate) - torch.log1p(-rate)
        else:
            taste_logit = self.taste_head(read["taste"])
        out = {
            "genre_logits": genre_logits,
            "taste_logit": taste_logit.squeeze(1),
            "mood_logits": self.mood_head(read["moods"]),
            "embedding": embedding,
            "summary": summary,
        }
        if self.tag_head is not None:
            out["tag_logits"] = self.tag_head(features)
        if self.feature_head is not None:
            out["teacher_features"] = self.feature_head(features)
        return out

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Raw audio (B, window_samples) -> (genre probs, taste prob, mood rates, embedding[, tag probs]):
        the ONNX graph, outputs in the order of ``streamtag.contract.output_names``."""
        return self.scores(self.frontend(audio))

    def scores(self, logmel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Log-mel (B, T, n_mels) -> the outputs of ``forward``: the network graph that streaming runs on frames
        computed once per stream."""
        out = self.forward_logmel(logmel)
        outputs = (
            torch.softmax(out["genre_logits"], dim=1),
            torch.sigmoid(out["taste_logit"]),
            torch.sigmoid(out["mood_logits"]),
            out["embedding"],
        )
        tags = (torch.sigmoid(out["tag_logits"]),) if "tag_logits" in out else ()
        return outputs + tags + (out["summary"],)


class CRNNEnsemble(nn.Module):
    """Several CRNNs trained on the same labels, run on one shared front end, their outputs averaged.

    Probabilities, taste and moods are means over the members; the embedding is the members' embeddings
    concatenated and L2-normalised, so a taste profile sees everything each member learned.
    """

    def __init__(self, members: list[CRNN]) -> None:
        super().__init__()
        first = members[0].config
        for member in members[1:]:
            c = member.config
            if (c.labels, c.mood_names, c.tag_names, c.window_samples, c.frontend) != (
                first.labels, first.mood_names, first.tag_names, first.window_samples, first.frontend
            ):
                raise ValueError("ensemble members must share labels, moods, tags, window and front end")
        self.config = replace(first, embedding_dim=sum(m.config.embedding_dim for m in members))
        self.frontend = members[0].frontend
        self.members = nn.ModuleList(members)

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.scores(self.frontend(audio))

    def scores(self, logmel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = [member.forward_logmel(logmel) for member in self.members]
        genre = torch.stack([torch.softmax(o["genre_logits"], dim=1) for o in outs]).mean(0)
        taste = torch.stack([torch.sigmoid(o["taste_logit"]) for o in outs]).mean(0)
        moods = torch.stack([torch.sigmoid(o["mood_logits"]) for o in outs]).mean(0)
        embedding = nn.functional.normalize(torch.cat([o["embedding"] for o in outs], dim=1), dim=1)
        summary = torch.cat([o["summary"] for o in outs], dim=1)
        if not self.config.tag_names:
            return genre, taste, moods, embedding, summary
        tags = torch.stack([torch.sigmoid(o["tag_logits"]) for o in outs]).mean(0)
        return genre, taste, moods, embedding, tags, summary
