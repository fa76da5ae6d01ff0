module k2/bench/loadgen

go 1.22
