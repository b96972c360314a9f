"""The harness that drives a whole store from outside, for integrators, tests and the benchmark: real processes
(``process``), the store's configuration written from the config models (``storeconf``), scripted shoppers and
faults (``demo``), and the ledger oracle (``oracle``). Not part of the controller: nothing in ``bingobox`` imports
it except the thin ``demo``/``bench``/``simulate`` verbs."""
