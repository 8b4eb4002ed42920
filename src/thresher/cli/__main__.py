"""`python -m thresher.cli ...`: what `thresher up` uses to start its server and agents."""

from thresher.cli.main import main

main()
