"""The command-line options that define a training recipe, shared by `streamtag train` and `tools/crossval.py`
so that a cross-validated recipe is exactly the one trained. No torch here: the CLI registers them at start."""

from __future__ import annotations

from pathlib import Path

from streamtag.train.config import ModelConfig, TrainConfig


def add_recipe_options(parser) -> None:
    """Teacher, unlabelled audio, loss weights, schedule, regularisation and architecture."""
    parser.add_argument("--teacher", type=Path, metavar="DIR",
                        help="distil a pretrained tagger: its targets, written by tools/teacher_targets.py")
    parser.add_argument("--unlabelled", type=Path, nargs="+", default=[], metavar="PATH",
                        help="audio files or folders with no labels, learned from the teacher only (needs --teacher)")
    parser.add_argument("--tag-weight", type=float, default=5.0, help="weight of the teacher's tags in the loss")
    parser.add_argument("--feature-weight", type=float, default=1.0,
                        help="weight of the teacher's features in the loss (0: tags only)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--average-last", type=int, default=0, metavar="N",
                        help="the model (best.pt) is the mean of the weights after each of the last N epochs "
                             "(stochastic weight averaging; early stopping is then off; default 0: off)")
    parser.add_argument("--mixup", type=float, default=0.3, help="mixup alpha (0: off)")
    parser.add_argument("--probe-heads", action="store_true",
                        help="after training, refit the genre, mood and taste heads as linear probes on the network's "
                             "features (streamtag.train.probe_heads)")
    parser.add_argument("--train-seed", type=int, metavar="N",
                        help="seed of the initial weights and the crops, for several members of an ensemble "
                             "(default: --seed)")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--weight-decay", type=float, default=1e-2)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--channels", type=int, nargs=4, default=list(ModelConfig.channels), metavar="C",
                        help="channels of the four conv blocks (default %(default)s)")
    parser.add_argument("--gru-hidden", type=int, default=ModelConfig.gru_hidden)
    parser.add_argument("--embedding-dim", type=int, default=ModelConfig.embedding_dim)


def architecture_of(args) -> dict:
    return {"dropout": args.dropout, "channels": tuple(args.channels), "gru_hidden": args.gru_hidden,
            "embedding_dim": args.embedding_dim}


def train_config_of(args, **fixed) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, average_epochs=args.average_last, mixup_alpha=args.mixup,
                       weight_decay=args.weight_decay, learning_rate=args.lr, tag_weight=args.tag_weight,
                       feature_weight=args.feature_weight,
                       seed=args.seed if args.train_seed is None else args.train_seed, **fixed)
