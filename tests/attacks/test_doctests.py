import doctest

import trustops.attacks.pgd


def test_the_pgd_doctest_runs():
    result = doctest.testmod(trustops.attacks.pgd)
    assert result.attempted > 0 and result.failed == 0
