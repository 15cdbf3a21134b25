# Round 13, CPU: the run protocol every script of this folder sources (round 12's 1-worker CPU protocol,
# docs/quality_round12/cpu/workers.sh: demo-size network, the round-8 sample at /tmp/jets.parquet, 20 epochs of
# which 6 pretraining unless a script overrides them, 20 000 training jets per epoch, batch 256, lr 1e-3,
# alpha_start 10, full val and test every epoch, selected on val). Sets LOGS and C; run from the repository root.
LOGS=${LOGS:-docs/quality_round13/cpu}
. docs/quality_round12/cpu/protocol.sh
C="$C --train.alpha_start 10 --np -1 --train.batch_size 256"
