"""The Wasserstein-2 matching and loss of topobook.losses.diagram_distances.

Oracles: a brute-force search over every partial matching of tiny diagrams; a hand-worked
example; gudhi.wasserstein (if POT is installed); central finite differences of the loss.
"""

import itertools

import numpy as np
import pytest
import torch

from topobook.losses.diagram_distances import (
    wasserstein2_squared,
    wasserstein_loss,
    wasserstein_matching,
)
from topobook.losses.topological import numerical_gradient, topological_loss


def brute_force_w2_squared(pred: np.ndarray, true: np.ndarray) -> float:
    """Minimum over every partial matching (k matched pairs, the rest to the diagonal)."""
    diag_p = (pred[:, 0] - pred[:, 1]) ** 2 / 2
    diag_t = (true[:, 0] - true[:, 1]) ** 2 / 2
    best = np.inf
    for k in range(min(len(pred), len(true)) + 1):
        for rows in itertools.combinations(range(len(pred)), k):
            for cols in itertools.permutations(range(len(true)), k):
                pairs = zip(rows, cols, strict=True)
                cost = sum(((pred[i] - true[j]) ** 2).sum() for i, j in pairs)
                cost += diag_p.sum() - diag_p[list(rows)].sum()
                cost += diag_t.sum() - diag_t[list(cols)].sum()
                best = min(best, cost)
    return float(best)


def random_diagram(rng: np.random.Generator, n: int) -> np.ndarray:
    births = rng.random(n)
    return np.column_stack([births, births - rng.random(n) * births])  # superlevel: b >= d


@pytest.mark.parametrize("seed", range(40))
def test_matches_brute_force_on_tiny_diagrams(seed):
    rng = np.random.default_rng(seed)
    pred = random_diagram(rng, int(rng.integers(0, 5)))
    true = random_diagram(rng, int(rng.integers(0, 4)))
    assert wasserstein2_squared(pred, true) == pytest.approx(
        brute_force_w2_squared(pred, true), abs=1e-12
    )


def test_hand_worked_example():
    # (0.8, 0.3) to (1, 0) costs 0.13; the other point goes to the diagonal at 0.125
    pred = np.array([[0.8, 0.3], [0.5, 0.0]])
    true = np.array([[1.0, 0.0]])
    pairs, p_diag, t_diag = wasserstein_matching(pred, true)
    assert pairs.tolist() == [[0, 0]] and p_diag.tolist() == [1] and t_diag.tolist() == []
    assert wasserstein2_squared(pred, true) == pytest.approx(0.13 + 0.125)


def test_against_gudhi_if_available():
    wasserstein = pytest.importorskip("gudhi.wasserstein", exc_type=ImportError)
    rng = np.random.default_rng(7)
    for _ in range(10):
        pred, true = random_diagram(rng, 6), random_diagram(rng, 4)
        # gudhi wants births <= deaths: negate (a reflection keeps every distance)
        expected = wasserstein.wasserstein_distance(-pred, -true, order=2, internal_p=2) ** 2
        assert wasserstein2_squared(pred, true) == pytest.approx(expected, abs=1e-10)


def test_continuous_where_the_lifetime_matching_jumps():
    # the example of chapter 2: two lifetimes tie at delta = 0
    target = torch.tensor([[1.0, 1, 1, 0, 1, 1]], dtype=torch.float64)

    def image(delta: float) -> torch.Tensor:
        return torch.tensor([[0.95, 0.3, 0.8, 0.0, 0.5 + delta, 0.0]], dtype=torch.float64)

    for delta in (0.0, 1e-6, -1e-6):
        assert wasserstein_loss(image(delta), target).item() == pytest.approx(0.2575, abs=1e-5)
    jump = topological_loss(image(1e-6), target) - topological_loss(image(0.0), target)
    assert jump.item() == pytest.approx(0.12, abs=1e-5)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    truth = (rng.random((9, 9)) > 0.4).astype(float)
    values = 0.02 + 0.96 * rng.random((9, 9))  # distinct values: the loss is smooth here
    target = torch.tensor(truth)
    for complex_ in ("cubical", "freudenthal"):
        x = torch.tensor(values, requires_grad=True)
        wasserstein_loss(x, target, complex=complex_).backward()
        numeric = numerical_gradient(
            lambda t, c=complex_: wasserstein_loss(t, target, complex=c), values, eps=1e-7
        )
        np.testing.assert_allclose(x.grad.numpy(), numeric, atol=1e-5)
        assert np.count_nonzero(numeric) > 0


def test_never_above_the_lifetime_matching():
    # an optimal matching costs at most as much as the rank matching (both use the same costs)
    rng = np.random.default_rng(11)
    for _ in range(10):
        f = torch.tensor(rng.random((8, 8)))
        g = torch.tensor((rng.random((8, 8)) > 0.5).astype(float))
        assert wasserstein_loss(f, g).item() <= topological_loss(f, g).item() + 1e-12


def test_bad_input():
    with pytest.raises(ValueError, match="shape"):
        wasserstein_matching(np.zeros((3, 3)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="finite"):
        wasserstein_matching(np.array([[1.0, -np.inf]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="complex"):
        wasserstein_loss(torch.rand(4, 4), torch.zeros(4, 4), complex="hexagonal")
    with pytest.raises(ValueError, match="dims"):
        wasserstein_loss(torch.rand(4, 4), torch.zeros(4, 4), dims=(2,))
    with pytest.raises(ValueError, match="NaN"):
        wasserstein_loss(torch.full((4, 4), float("nan")), torch.zeros(4, 4))
