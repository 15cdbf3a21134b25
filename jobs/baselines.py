"""Print the references for a dataset and configuration, measured on the same jets (fit on train, scored on
test): k-means on the jet mass (the floor) and the best labelled mass cuts; with the substructure columns also
k-means on the groomed mass, on (m_sd, tau21, tau32) and (m, m_sd, tau21, tau32), and the best labelled m_sd
cuts (the network's own ceiling: jobs/train.py --supervised). Rows that cannot be measured are printed with
the reason ("skipped").

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
    from ucluster.baselines import REFERENCES, reference_rows
    from ucluster.data.schema import DatasetError

    try:
        cfg = load_config(args.config, overrides_from_args(args))
        rows = reference_rows(cfg)
    except (ConfigError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, row in rows.items():
        print(json.dumps({"baseline": REFERENCES[name], "name": name, **row}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
