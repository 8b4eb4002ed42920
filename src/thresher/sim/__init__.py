"""The farm simulator (`thresher simulate`): the server's own dispatch and lifecycle code driven by
simulated nodes in virtual time, on a real database, for capacity planning and fairness tests at a
scale real agents cannot reach. `scenario.py` is what a wrangler writes, `engine.py` the event loop,
`report.py` the figures drawn from what ran, `render.py` the table, JSON and HTML views of them."""
