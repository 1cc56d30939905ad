#!/usr/bin/python3
# spinner.py SLEEP SPIN SLEEP: sleeps, spins on one CPU, sleeps. The process watch tests
# copy it under the names they look for (a script's comm is its file name).
import sys, time
time.sleep(float(sys.argv[1]))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    pass
time.sleep(float(sys.argv[3]))
