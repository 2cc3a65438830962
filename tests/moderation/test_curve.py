"""tools.moderation.curve: builds compared at matched benign rates (fake scores; no model)."""
import numpy as np

from tools.moderation import curve


def _rows():
    # 100 everyday (de) rows with scores -0.9..0.09 (10 at or over the cut), 100 harmful requests -0.5..0.49
    fam = np.array(["everyday_benign"] * 100 + ["harmful_request"] * 100)
    lang = np.array(["de"] * 100 + ["en"] * 100)
    harm = np.concatenate([np.linspace(-0.9, 0.09, 100), np.linspace(-0.5, 0.49, 100)])
    return harm, fam, lang


def _cols(line):  # benign, h.req, harm, everyday, tricky, statements, de, fr, es ("-": no rows)
    return [float(x.rstrip("%")) if x != "-" else None for x in line.split()[-9:]]


def test_own_cuts_flag_at_zero_and_matched_rates_pick_the_quantile():
    harm, fam, lang = _rows()
    lines = curve.report("b", harm, fam, lang)
    assert len(lines) == 1 + len(curve.POOLED_RATES)
    own = _cols(lines[0])
    assert own[0] == 10.0 and own[1] == 50.0 and own[4] is None  # no tricky rows
    at5 = _cols(lines[2])  # 5 % of the benign pool flagged
    assert at5[0] == 5.0 and at5[3] == 5.0 and at5[6] == 5.0  # pooled = everyday = de benign here
    assert 0 < at5[1] < own[1]  # a stricter delta than the build's own cuts: lower recall


def test_a_better_build_has_higher_recall_at_the_same_benign_rate():
    harm, fam, lang = _rows()
    better = harm + np.where(fam == "harmful_request", 0.2, 0.0)
    worse_line, better_line = curve.report("a", harm, fam, lang)[2], curve.report("b", better, fam, lang)[2]
    assert _cols(better_line)[0] == _cols(worse_line)[0]
    assert _cols(better_line)[1] > _cols(worse_line)[1]
