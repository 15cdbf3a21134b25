#!/bin/bash
# Round 19, device call 6 (one GPU, session 14): the supervised reference (round 15's sup30: the same network on
# the labels, 30 epochs, lr halved every 10) on seeds 1-3 on the card and code of calls 4-5, so that the
# 0.95 x supervised goal compares like with like (round 15 ran seed 1 only, on an H100).
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
source docs/quality_round19/variants.sh
runs sup30 "${SEEDS:-1 2 3}" "$SUP30"
LIMIT=${LIMIT:-400} wait_and_pack
