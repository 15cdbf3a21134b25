#!/bin/bash
# Round 19, session 15, device call 2 (H100, warm after gpu8.sh's call): the supervised reference on seeds 1-3 and
# the 80-bin default on seeds 4-6 of the same H100, so the H100 holds six supervised seeds (gpu8's 4-6 and these)
# and a card comparison for 80 bins (raw6 holds seeds 4-6 on the H200). Six runs: 227 s warm. Logs: raw9/.
# (The call ran these lines inline, with LIMIT=500, rather than this file.)
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs sup30 "${SUP_SEEDS:-1 2 3}" "$SUP30"
runs hsd06b80 "${SEEDS:-4 5 6}" "$HSD06B80"
LIMIT=${LIMIT:-500} wait_and_pack
