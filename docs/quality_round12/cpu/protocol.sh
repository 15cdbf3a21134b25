# Round 12, CPU: the run protocol workers.sh and alpha_step.sh source (round 9's, with the streaming loader:
# demo-size network, the round-8 sample at /tmp/jets.parquet, 20 epochs of which 6 pretraining, 20 000 training
# jets per epoch, lr 1e-3, full val and test every epoch, selected on val; the scripts set workers and batch).
# Sets LOGS (unless given) and C; run from the repository root.
LOGS=${LOGS:-docs/quality_round12/cpu}
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 20
  --train.pretrain_epochs 6 --data.max_train_jets 20000 --data.max_eval_jets 0 --train.scale_lr false
  --run.experiment workers_study --run.progress false"
