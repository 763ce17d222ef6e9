"""Example bayesgen plugin: the ``w_munu`` process (W → μν with MET), in :mod:`.process`."""
