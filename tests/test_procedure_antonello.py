"""``--procedure antonello2023`` against a re-implementation of Antonello, Vaidya & Huth's code
(HuthLab/encoding-model-scaling-laws, ``ridge_utils``; docs/procedures/antonello2023.md), written from their
files: ``lanczosinterp2D`` (tests/test_design.py's transcription), ``npp.zscore``, ``make_delayed``,
``bootstrap_ridge``/``ridge_corr``/``ridge`` with numpy's SVD, and their tutorial's order of operations. The BOLD
they start from is preprocessed outside their code; it is cleaned here as the preset says (LeBel et al. 2023's
Savitzky-Golay detrending, then trimmed and z-scored per run), with the app's own mask and features, so that only
the procedure is compared.
"""

import itertools as itools
import json
import random

import numpy as np
import pandas as pd
import pytest
from conftest import validator_errors
from scipy.signal import savgol_filter
from test_design import huth_lanczosinterp2d  # interpdata.py lanczosinterp2D, transcribed

from bids_encoding.cli.entry import main
from bids_encoding.features import FeatureSettings, extract_word_features, load_model, parse_model_spec
from bids_encoding.synthetic.generator import generate_dataset

T_R = 2.0
N_RUNS = 4
SEED = 0  # the app's InnerCV seed; their code shuffles with the unseeded global random


def zs(v):  # npp.py:11-21
    s = v.std(0)
    m = v - v.mean(0)
    for i in range(len(s)):
        if s[i] != 0.:
            m[:, i] /= s[i]
    return m


def make_delayed(stim, delays):  # util.py:6-27 (circpad=False)
    nt, ndim = stim.shape
    dstims = []
    for d in delays:
        dstim = np.zeros((nt, ndim))
        dstim[d:, :] = stim[:-d, :]
        dstims.append(dstim)
    return np.hstack(dstims)


def ridge_corr(Rstim, Pstim, Rresp, Presp, alphas, singcutoff=1e-10):  # ridge.py:168-290, use_corr=False
    U, S, Vh = np.linalg.svd(Rstim, full_matrices=False)
    ngoodS = np.sum(S > singcutoff)
    U, S, Vh = U[:, :ngoodS], S[:ngoodS], Vh[:ngoodS]
    UR = np.dot(U.T, Rresp)
    PVh = np.dot(Pstim, Vh.T)
    Prespvar = (np.ones_like(Presp.var(0)) + Presp.var(0)) / 2.0
    Rcorrs = []
    for a in alphas:
        D = S / (S ** 2 + a ** 2)
        pred = np.dot(PVh * D, UR)
        Rsq = 1 - ((Presp - pred).var(0) / Prespvar)
        Rcorr = np.sqrt(np.abs(Rsq)) * np.sign(Rsq)
        Rcorr[np.isnan(Rcorr)] = 0
        Rcorrs.append(Rcorr)
    return Rcorrs


def ridge(stim, resp, alpha):  # ridge.py:13-64
    U, S, Vh = np.linalg.svd(stim, full_matrices=False)
    UR = np.dot(U.T, np.nan_to_num(resp))
    wt = np.zeros((stim.shape[1], resp.shape[1]))
    for ua in np.unique(alpha):
        selvox = np.nonzero(alpha == ua)[0]
        wt[:, selvox] = Vh.T.dot(np.diag(S / (S ** 2 + ua ** 2))).dot(UR[:, selvox])
    return wt


def bootstrap_ridge(Rstim, Rresp, Pstim, Presp, alphas, nboots, chunklen, nchunks):  # ridge.py:293-471
    nresp, nvox = Rresp.shape
    Rcmats = []
    for _ in range(nboots):
        allinds = range(nresp)
        indchunks = list(zip(*[iter(allinds)] * chunklen))
        random.shuffle(indchunks)
        heldinds = list(itools.chain(*indchunks[:nchunks]))
        notheldinds = list(set(allinds) - set(heldinds))
        Rcmats.append(ridge_corr(Rstim[notheldinds, :], Rstim[heldinds, :], Rresp[notheldinds, :],
                                 Rresp[heldinds, :], alphas))
    allRcorrs = np.dstack(Rcmats)
    valphas = alphas[np.argmax(allRcorrs.mean(2), 0)]
    wt = ridge(Rstim, Rresp, valphas)
    nnpred = np.nan_to_num(np.dot(Pstim, wt))
    corrs = np.nan_to_num(np.array([np.corrcoef(Presp[:, ii], nnpred[:, ii].ravel())[0, 1]  # use_corr=True line
                                    for ii in range(Presp.shape[1])]))
    return wt, corrs, valphas


def cleaned_bold(bold, mask):
    """LeBel et al. 2023: minus a Savitzky-Golay fit (order 2, 120 s = 61 scans at TR 2 s), trimmed 10 and 5
    scans, z-scored."""
    from nilearn.masking import apply_mask

    data = apply_mask(str(bold), mask).astype(np.float64)
    detrended = data - savgol_filter(data, 61, 2, axis=0)
    return zs(detrended[10:-5])


@pytest.fixture(scope="module")
def antonello(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("antonello")
    generate_dataset(root, str(tiny_model), n_participants=1, n_runs=N_RUNS, seed=5, repeats=1)
    output_dir = root / "out"
    code = main([str(root / "bids"), str(output_dir), "participant", "--models", str(tiny_model), "--procedure",
                 "antonello2023", "--device", "cpu", "--pvalue-method", "none", "--skip-reports"])
    assert code == 0
    func = output_dir / "sub-01" / "func"
    mask = next(func.glob("*_desc-brain_mask.nii.gz"))
    bold = sorted((root / "bids" / "sub-01" / "func").glob("*_bold.nii.gz"),
                  key=lambda path: int(path.name.split("run-")[1].split("_")[0]))
    responses = [cleaned_bold(path, mask) for path in bold]
    loaded = load_model(parse_model_spec(str(tiny_model)))
    features = {}  # layer -> per run, Lanczos-resampled to the whole run
    for run, path in enumerate(bold):
        events = pd.read_csv(root / "bids" / f"task-story_run-{run + 1}_events.tsv", sep="\t")
        words = events[events["trial_type"] == "word"]
        hidden = extract_word_features(loaded, list(words["word"]), FeatureSettings(pooling="last"),
                                       progress=False).hidden
        midpoints = (words["onset"] + words["duration"] / 2).to_numpy()
        tr_times = np.arange(_n_scans(path)) * T_R + T_R / 2  # trigger times + TR / 2 (DataSequence.py:113)
        for layer, activations in hidden.items():
            features.setdefault(layer, []).append(huth_lanczosinterp2d(np.asarray(activations), midpoints, tr_times))
    return output_dir, mask, responses, features


def _n_scans(path):
    import nibabel as nib

    return nib.load(path).shape[-1]


def their_fit(features_runs, responses, test_runs):
    """The tutorial's cell: trim, z-score per story, stack, delay, bootstrap_ridge (seeded)."""
    train = [run for run in range(len(responses)) if run not in test_runs]
    Rstim = np.nan_to_num(np.vstack([zs(features_runs[run][10:-5]) for run in train]))
    Pstim = np.nan_to_num(np.vstack([zs(features_runs[test_runs[0]][10:-5])]))
    delRstim, delPstim = make_delayed(Rstim, range(1, 5)), make_delayed(Pstim, range(1, 5))
    Rresp = np.vstack([responses[run] for run in train])
    Presp = np.mean([responses[run] for run in test_runs], axis=0)
    random.seed(SEED)
    _, corrs, valphas = bootstrap_ridge(delRstim, Rresp, delPstim, Presp, np.logspace(1, 4, 15), nboots=3,
                                        chunklen=20, nchunks=int(len(Rresp) * 0.25 / 20))
    return corrs, valphas


def test_antonello2023_equals_their_code(antonello):
    from nilearn.masking import apply_mask

    output_dir, mask, responses, features = antonello
    test_runs = [0, N_RUNS]  # run 1 and its repeat: the stimulus presented most often
    func = output_dir / "sub-01" / "func"
    differences, alphas_equal = {}, {}
    for layer, runs in features.items():
        corrs, valphas = their_fit(runs, responses, test_runs)
        app_r = apply_mask(str(next(func.glob(f"*_layer-{layer}_stat-r_statmap.nii.gz"))), mask)
        app_alpha = apply_mask(str(next(func.glob(f"*_layer-{layer}_stat-alpha_statmap.nii.gz"))), mask)
        differences[layer] = float(np.abs(app_r - corrs).max())
        alphas_equal[layer] = float(np.isclose(app_alpha, valphas ** 2, rtol=1e-5).mean())
    print(f"antonello2023: max |delta r| per layer {differences}; fraction of voxels with equal alphas "
          f"{alphas_equal}")
    assert max(differences.values()) <= 1e-3, differences
    assert min(alphas_equal.values()) == 1.0, alphas_equal
    sidecar = json.loads(next(func.glob("*_layer-1_stat-r_statmap.json")).read_text())
    assert sidecar["Procedure"]["Name"] == "antonello2023"
    assert sidecar["Ridge"]["TestRuns"] == ["sub-01_task-story_run-1_bold.nii.gz",
                                            f"sub-01_task-story_run-{N_RUNS + 1}_bold.nii.gz"]
    assert sidecar["Ridge"]["InnerCV"] == {"Scheme": "huth-bootstrap", "NumberOfBootstraps": 3, "ChunkLength": 20,
                                           "HeldOutFraction": 0.25, "Seed": SEED}
    assert sidecar["Cleaning"]["SavitzkyGolayWindowSeconds"] == 120.0
    assert sidecar["Design"]["delays_across_runs"] is True
    from bids_encoding.reports.boilerplate import methods

    text, cites = methods([sidecar])
    print(text)
    assert "followed the code of Antonello, Vaidya & Huth (2023)" in text and "antonello2023" in cites
    assert "Savitzky-Golay fit (order 2, 120 s), z-scoring, then trimmed and z-scored again" in text
    assert "The design was trimmed and z-scored only" in text and "cleaned alike" not in text
    assert not validator_errors(output_dir)


def test_huth_bootstrap_draws_as_their_shuffle():
    from bids_encoding.ridge.cv import InnerCV

    n_rows = 347
    ours = InnerCV("huth-bootstrap", n_bootstraps=3, chunk_length=20, held_out=0.25, seed=7).validation_sets([], n_rows)
    random.seed(7)
    for held in ours:
        indchunks = list(zip(*[iter(range(n_rows))] * 20))
        random.shuffle(indchunks)
        assert list(held) == list(itools.chain(*indchunks[:int(n_rows * 0.25 / 20)]))


def test_delays_across_runs_carry_the_previous_training_run():
    from bids_encoding.design.settings import DesignSettings

    designs = [np.full((6, 1), float(run + 1)) for run in range(3)]
    delayed = DesignSettings(kind="lanczos-fir", fir_delays=(1, 2), delays_across_runs=True).delayed_runs(
        designs, [2, 0], [1])
    np.testing.assert_array_equal(delayed[0][:2], [[3, 3], [1, 3]])  # run 3 came before run 1 in the stack
    np.testing.assert_array_equal(delayed[2][:2], [[0, 0], [3, 0]])  # first in the stack: zeros
    np.testing.assert_array_equal(delayed[1][:2], [[0, 0], [2, 0]])  # the test run alone
