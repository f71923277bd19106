"""welavae/models.py: the one registry of model kinds, its Table-1 keys and display names.

Known answers: the paper's §4.3 (β-TCVAE K = 5, WeLa-VAE K = 2, both β = 40), the variants
§3 names (β-VAE: β·KL; DIP-VAE-II), and the key grammar ``<kind>[_p<P>]`` of Table 1's rows.
"""
import pytest

from welavae.config import REGULARISERS
from welavae.models import LABELS, MODELS, SUPERVISIONS, ModelKind, display_name, parse_key


def test_the_registry_holds_the_paper_s_models_and_the_named_variants():
    got = {n: (k.display, k.regulariser, k.labels, k.latent_dim, k.beta, k.supervision) for n, k in MODELS.items()}
    assert got == {
        "tcvae": ("β-TCVAE", "tc", "never", 5, 40.0, "decoder"),
        "wela": ("WeLa-VAE", "tc", "required", 2, 40.0, "decoder"),
        "betavae": ("β-VAE", "kl", "optional", 5, 4.0, "decoder"),
        "dipvae": ("DIP-VAE", "dip-ii", "optional", 5, 0.0, "decoder"),
        # the peers (docs/peers.md): β-TCVAE's objective with WeLa-VAE's β and K, and CCVAE's bound (no β)
        "s2tcvae": ("S2-β-TCVAE", "tc", "required", 2, 40.0, "s2"),
        "ccvae": ("CCVAE", "ccvae", "required", 2, 0.0, "ccvae"),
    }
    for name, kind in MODELS.items():  # keyed by its own name; fields from the closed vocabularies
        assert kind.name == name and kind.regulariser in REGULARISERS and kind.labels in LABELS
        assert kind.supervision in SUPERVISIONS


def test_a_kind_with_an_unknown_label_use_is_refused():
    with pytest.raises(ValueError, match="labels must be one of"):
        ModelKind("x", "X", "tc", "sometimes", latent_dim=2, beta=1.0)
    with pytest.raises(ValueError, match="supervision must be one of"):
        ModelKind("x", "X", "tc", "required", latent_dim=2, beta=1.0, supervision="probe")


@pytest.mark.parametrize(
    "key,name,p",
    [("tcvae", "tcvae", None), ("wela_p2", "wela", 2), ("wela_p8", "wela", 8), ("wela_p12", "wela", 12),
     ("betavae", "betavae", None), ("betavae_p3", "betavae", 3), ("dipvae_p2", "dipvae", 2),
     ("s2tcvae_p2", "s2tcvae", 2), ("ccvae_p3", "ccvae", 3)],  # a digit inside the name
)
def test_parse_key(key, name, p):
    kind, got_p = parse_key(key)
    assert kind is MODELS[name] and got_p == p


@pytest.mark.parametrize(
    "key,match",
    [
        ("wela", "needs a label dimension, e.g. wela_p2"),
        ("tcvae_p2", "β-TCVAE takes no labels"),
        ("vae", "use one of tcvae, wela_pP, betavae, dipvae"),
        ("wela_p", "unknown model"),
        ("WELA_p2", "unknown model"),
        ("wela-p2", "unknown model"),
    ],
)
def test_a_bad_key_says_what_is_valid(key, match):
    with pytest.raises(ValueError, match=match):
        parse_key(key)


def test_display_names_of_table_1():
    assert display_name("tcvae", labelled=False) == "β-TCVAE"
    assert display_name("wela", labelled=True) == "WeLa-VAE"
    assert display_name("betavae", labelled=False) == "β-VAE"
    assert display_name("betavae", labelled=True) == "WeLa-β-VAE"  # an optional-label kind given labels
    assert display_name("dipvae", labelled=True) == "WeLa-DIP-VAE"
    assert display_name("s2tcvae", labelled=True) == "S2-β-TCVAE"  # a required-label kind keeps its name
    assert display_name("ccvae", labelled=True) == "CCVAE"
