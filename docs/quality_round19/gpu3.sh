#!/bin/bash
# Round 19, device call 3 (the session's last 278 s on a warm H100): hsd06 and bins60 of gpu2.sh together, seeds 1-3
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs hsd06b60 "${SEEDS:-1 2 3}" "$HSD06B60"
LIMIT=${LIMIT:-235} wait_and_pack
