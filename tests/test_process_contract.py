"""What every embedded Monte Carlo process promises, checked once for all of them."""
import numpy as np
import pytest

import bayesgen

EMBEDDED = ["z_mumu", "z_ee", "h_zz_4mu", "z_mumu_jets", "ecal_cloud", "jet_images"]


@pytest.mark.parametrize("name", EMBEDDED)
def test_reproducible_and_seed_dependent(name):
    process = bayesgen.get_process(name)
    a, b, c = process.sample(3000, 1), process.sample(3000, 1), process.sample(3000, 2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert process.sample(0, 3).shape == (0, len(process.quantities))
    assert set(process.observables(a)) == set(process.binnings)
