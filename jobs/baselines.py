"""Print the mass-only references for a dataset and configuration: the k-means floor and the best mass cuts
(the network's own ceiling: jobs/train.py --supervised).

    python -m jobs.baselines --data data/jets.parquet [--config conf/ucluster.yaml] [--section.field VALUE]
"""

from __future__ import annotations

import argparse
import json
import sys

from ucluster.config import ConfigError, add_config_arguments, load_config, overrides_from_args


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None)
    p.add_argument("--data", dest="cfg__data__path", default=None)
    add_config_arguments(p)
    args = p.parse_args(argv)
    from ucluster.baselines import best_mass_cuts, mass_kmeans
    from ucluster.data.schema import DatasetError

    try:
        cfg = load_config(args.config, overrides_from_args(args))
        result = mass_kmeans(cfg)
        cuts = best_mass_cuts(cfg) if cfg.model.n_clusters in (2, 3) else None
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"baseline": "k-means on the jet mass", **result}, indent=2))
    if cuts is not None:
        print(json.dumps({"baseline": "best cuts on the jet mass (chosen with the true labels)", **cuts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
