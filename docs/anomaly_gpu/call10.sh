#!/bin/bash
# Device call 10: call 9 found no machine, and the device minutes left could not hold its full-size sample, so this
# is call 9 on the half-size sample of call 7 (52 000 QCD + 1 000 X(500) Y(100), same seeds), 1 % only. It found no
# machine either (the session's device minutes ended): it never ran. call9.sh says what it is for.
QCD=52000 WPRIME=1000 SIM_S=${SIM_S:-100} LOW=0 LIMIT=${LIMIT:-225} TARNAME=anomaly_logs10 \
  exec bash "$(dirname "$0")/call9.sh"
