#!/bin/bash
# E16: the main job then the whole comparison, on a fresh clone, README set-up
cd /work/run16/repo
( while true; do echo "$(date +%T) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 60; done ) > /work/run16/load.log &
LOADPID=$!
echo "start $(date +%s) $(date)" > /work/run16/times.txt
/usr/bin/time -f "setup %e s" -a -o /work/run16/times.txt ./setup.sh > /work/run16/setup.log 2>&1
. ./path.sh
echo "main-start $(date +%s)" >> /work/run16/times.txt
/usr/bin/time -f "main %e s wall, maxrss %M KB" -a -o /work/run16/times.txt snakemake --cores 8 results/vox1_eer.txt > /work/run16/main.log 2>&1
echo "main-rc $? $(date +%s)" >> /work/run16/times.txt
/usr/bin/time -f "compare %e s wall, maxrss %M KB" -a -o /work/run16/times.txt snakemake --cores 2 results/comparison.md > /work/run16/compare.log 2>&1
echo "compare-rc $? $(date +%s) $(date)" >> /work/run16/times.txt
kill $LOADPID
