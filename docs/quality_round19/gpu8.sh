#!/bin/bash
# Round 19, session 15, device call 1 (it came as an H100; logs: raw8/): the confirmation of the 80-bin default on
# seeds it was not chosen on (10-15), beside the supervised reference (round 15's sup30) on seeds 4-6 of the same
# card; with gpu9.sh's seeds 1-3 (raw9/) six supervised seeds on that H100. Nine runs at once: 351 s with a cold
# start on the H100.
# Compare only with runs of the same card (confirm.log: the card moves a seed's result by about half a point).
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs hsd06b80 "${SEEDS:-10 11 12 13 14 15}" "$HSD06B80"
runs sup30 "${SUP_SEEDS:-4 5 6}" "$SUP30"
LIMIT=${LIMIT:-560} wait_and_pack
