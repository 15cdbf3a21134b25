#!/bin/bash
# Round 19, prepared for the next device call (one GPU; not run yet): the confirmation of the 80-bin default on
# seeds it was not chosen on (10-15), beside the supervised reference (round 15's sup30) on seeds 4-6 of the same
# card; with raw6/ that makes six supervised seeds. Nine runs at once: about 400 s on a warm H200.
# Compare only with runs of the same card (confirm.log: the card moves a seed's result by about half a point).
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs hsd06b80 "${SEEDS:-10 11 12 13 14 15}" "$HSD06B80"
runs sup30 "${SUP_SEEDS:-4 5 6}" "$SUP30"
LIMIT=${LIMIT:-560} wait_and_pack
