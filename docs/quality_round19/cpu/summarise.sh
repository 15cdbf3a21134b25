#!/bin/bash
# Round 19, CPU: candidate.sh's runs (hsd06b60: the new default, seeds 1-6) summarised as round 18's were, beside
# round 17's runs of the old default -> swings_cpu.log, compare.log
ROUND=19 exec bash "$(dirname "$0")/../../quality_round18/cpu/summarise.sh"
