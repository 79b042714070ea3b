"""Built-in views of cause and effect inside the LSTM: :saliency, :gates, :units-for, :vs-ngram.

`:cells` shows what the state holds; these show what made a word likely (`:saliency`: occlusion
through ONNX Runtime and gradient × input by NumPy backpropagation), what the gates did word by word
(`:gates`), which units push one word's logit (`:units-for`) and where the LSTM's memory beats a
3-gram (`:vs-ngram`). The arithmetic lives below (`generate/influence`, `gates`, `interventions`,
`model/numpy_lstm`, `model/ngram`); the weights come from the model file, checked against the engine
(`generate/lstm_model`). Stateful one-layer exported models only; tables go to stderr in batch mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from recipe_repl.base.errors import BadValue, UsageError, UserError
from recipe_repl.model.vocab import PAD_ID
from recipe_repl.plugin.commands import split_args
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session
from recipe_repl.views.heat import STOP_WORD

if TYPE_CHECKING:  # the arithmetic is imported when a command runs: start-up never pays for it
    from recipe_repl.generate.lstm_model import LstmModel
    from recipe_repl.generate.numbering import NumberedText
    from recipe_repl.model.ngram import TrigramModel

GATE_KINDS = ("c", "f", "i", "o")
OCCLUSION_REACH = 200  # words hidden one at a time at most (the nearest): ~k²/2 row-steps through the engine
MAX_HINT_TEXTS = 64  # texts the hints and the gate summary read (the 64 a model bundles: about 0.2 s)


def _unit(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadValue(f"a unit is a number, not {text!r}") from None


def _model(session: Session) -> LstmModel:
    from recipe_repl.generate.lstm_model import lstm_model

    return lstm_model(session.engine)


def _all_ids(text: NumberedText) -> list[int]:
    """Every word's id, the stop token (0) last when the text ended on it: what the predictions are of."""
    return [w.id for w in text.words]


def _note(model: LstmModel) -> str:
    note = model.note()
    return f" · {note}" if note else ""


# --- :saliency -----------------------------------------------------------------------------------------


def _saliency(session: Session, args: str) -> None:
    from rich.console import Group
    from rich.text import Text

    from recipe_repl.generate import influence
    from recipe_repl.views import lstm_view, render

    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    model = _model(session)
    text = session.text_for("saliency")
    ids = _all_ids(text)
    if len(ids) < 2:
        raise UserError(f"{text.source} has one word: no word before it to explain")
    k = text.index(parts[0], ":saliency", predicted=True) + 1 if parts else len(ids)
    found = influence.influence(model, ids, k, reach=OCCLUSION_REACH)
    profile = influence.distance_profile(model, ids)
    words = text.tokens()
    target = render.safe(words[k - 1])
    occ = [None if np.isnan(v) else float(v) for v in found.occlusion] + [None] * (len(words) - k + 1)
    grad = [float(v) for v in found.gradient] + [None] * (len(words) - k + 1)
    scale = lstm_view.nice_scale(np.concatenate([found.occlusion, found.gradient]))  # NaN: not hidden
    raw = session.settings.raw
    labels = [f"{lo}" if lo == hi else f"{lo}–{hi}" for lo, hi in profile.buckets]
    unknown = f" · {len(found.unknown)} word(s) already [UNK]: hiding them changes nothing" if found.unknown else ""
    if k - 1 > OCCLUSION_REACH:
        unknown += f" · occlusion hides the {OCCLUSION_REACH} nearest words only"
    session.frontend.show(Group(
        Text(f"which words made word {k} “{target}” likely in {text.source}: the model gave it "
             f"{render.percent(float(np.exp(found.logprob)))} (log p {found.logprob:.2f})", style="bold"),
        Text("occlusion — Δ log p when the word is read as [UNK] (ONNX Runtime, forward passes):", style="dim"),
        lstm_view.ScoredText(words, occ, scale, mark=k - 1, raw=raw),
        Text("gradient × input — ∂ log p / ∂ embedding · embedding (NumPy backpropagation):", style="dim"),
        lstm_view.ScoredText(words, grad, scale, mark=k - 1, raw=raw),
        lstm_view.Legend(scale, "made it less likely", "made it likelier", raw),
        lstm_view.influence_table(words, found.occlusion, found.gradient),
        Text(f"how far back words matter: mean |gradient × input| by distance over the {profile.targets} "
             f"predicted words of {text.source}", style="bold"),
        lstm_view.profile_table(labels, profile.mean, profile.pairs),
        Text(f"the model's own probabilities (temperature 1, no processors){_note(model)}{unknown}", style="dim"),
    ))


# --- :gates --------------------------------------------------------------------------------------------


def _gates(session: Session, args: str) -> None:
    parts = args.split()
    focus = "c"
    if parts and parts[0].lower() in GATE_KINDS:
        focus, parts = parts[0].lower(), parts[1:]
    if len(parts) > 1:
        raise UsageError("too many arguments")
    model = _model(session)
    if not parts:
        _gate_summary(session, model)
        return
    unit = _unit(parts[0])
    if not 0 <= unit < model.units:
        raise BadValue(f"no unit {unit}: this model's LSTM has {model.units} units, numbered 0 to {model.units - 1}",
                       example=f":gates {min(17, model.units - 1)}")
    text = session.text_for("gates")
    _unit_gates(session, model, text, unit, focus)


def _unit_gates(session: Session, model: LstmModel, text: NumberedText, unit: int, focus: str) -> None:
    from rich.console import Group
    from rich.text import Text

    from recipe_repl.generate import gates
    from recipe_repl.views import cell_view, lstm_view, render

    found = gates.unit_gates(model, text.ids(), unit)
    scale = cell_view.nice_scale(np.concatenate([found.c, found.c_before, found.written]), "c")
    rows = [("i input", found.i, 0.5, 0.5), ("f forget", found.f, 0.5, 0.5), ("o output", found.o, 0.5, 0.5),
            ("g candidate", found.g, 0.0, 1.0), ("i·g written", found.written, 0.0, scale),
            ("f·c kept", found.kept, 0.0, scale), ("(1−f)·c erased", found.erased, 0.0, scale),
            ("c cell", found.c, 0.0, scale)]
    rows.sort(key=lambda row: row[0].split()[0] != focus)  # the row asked for first
    values = {"c": found.c, "f": found.f, "i": found.i, "o": found.o}[focus]
    lo, hi = int(values.argmin()), int(values.argmax())
    name = {"c": "c", "f": "the forget gate", "i": "the input gate", "o": "the output gate"}[focus]
    note = (f"{name}: min {values[lo]:+.2f} at “{render.safe(found.words[lo])}” (word {lo + 1}) · max "
            f"{values[hi]:+.2f} at “{render.safe(found.words[hi])}” (word {hi + 1}) · gates coloured around 0.5 "
            f"(blue shut, red open), g and c around 0 (±1, ±{scale:g}){_note(model)}")
    session.frontend.show(Group(
        Text(f"unit {unit}'s gates at each word of {text.source}: c = f·c_before + i·g (kept + written), "
             "h = o·tanh(c)", style="bold"),
        lstm_view.GateStrip(found.words, rows, raw=session.settings.raw),
        Text(note, style="dim"),
    ))


def _texts(session: Session) -> tuple[list[list[int]], str]:
    """The bundled validation recipes (as `:cells find` reads them), else the last samples."""
    from recipe_repl.generate import cells
    from recipe_repl.generate.inspection import context_ids

    engine = session.engine
    if engine.info.sample_texts:
        raw = list(engine.info.sample_texts)[:MAX_HINT_TEXTS]
        ids = [i[:cells.MAX_TEXT_WORDS] for i in (engine.vocab.encode(t) for t in raw) if i]
        return ids, f"{len(ids)} recipes bundled with the model ({engine.info.sample_source or 'held out'})"
    ids = [(context_ids(engine.vocab, s) + s.token_ids)[:cells.MAX_TEXT_WORDS] for s in session.last_samples]
    ids = [i for i in ids if i]
    if not ids:
        raise UserError("no texts to read: this model bundles no validation recipes (export it again with this "
                        "version), so type a prompt first and its samples are read")
    return ids, f"the last {len(ids)} sample{'s' if len(ids) != 1 else ''}"


def _features(session: Session) -> dict[str, Any]:
    return {name: spec.feature for name, spec in session.plugins.features.items()}


def _gate_summary(session: Session, model: LstmModel) -> None:
    from recipe_repl.generate import gates
    from recipe_repl.views import lstm_view

    texts, source = _texts(session)
    traces, forget = gates.trace_texts(model, texts)
    sat = gates.saturation(forget, len(texts))
    hints = gates.hints(traces, _features(session), "c")
    rows = []
    for which, label in (("integrator", "integrator"), ("resetter", "resetter")):
        for unit in sat.most(which):
            name, r = hints.get(unit, ("", 0.0))
            rows.append((label, unit, float(sat.integrator[unit]), float(sat.resetter[unit]),
                         f"{name} r {r:+.2f}" if name else "-"))
    mostly_on = int((sat.integrator > 0.5).sum())
    mostly_off = int((sat.resetter > 0.5).sum())
    title = (f"forget gates over {sat.words:,} words of {source}: the share of words at which each unit keeps "
             "its cell (f > 0.9, an integrator) or erases it (f < 0.1, a resetter)")
    caption = (f"{mostly_on} of {model.units} units keep their cell at over half the words, {mostly_off} erase it "
               "at over half (Karpathy, Johnson & Fei-Fei 2015, §4.2) · hint: the unit's c follows that "
               f":cells find feature (|r| ≥ {gates.HINT_MIN}) · :gates UNIT shows one unit word by word"
               f"{_note(model)}")
    session.frontend.show(lstm_view.saturation_table(rows, title, caption))


# --- :units-for ----------------------------------------------------------------------------------------


def _word_id(session: Session, word: str) -> int:
    vocab = session.engine.vocab
    if word in (STOP_WORD, "[end]"):  # the stop token, as :words shows it
        return PAD_ID
    prepared = vocab.prepare(word)
    if len(prepared) != 1:
        raise BadValue(f"{word!r} is {len(prepared)} words as the model reads them: give one word")
    if prepared[0] not in vocab:
        raise BadValue(f"{prepared[0]!r} is not in the vocabulary (the model reads it as [UNK])",
                       example=":units-for cup")
    return vocab.id_of(prepared[0])


def _units_for(session: Session, args: str) -> None:
    from recipe_repl.generate import gates
    from recipe_repl.generate.interventions import contributions
    from recipe_repl.views import lstm_view, render

    parts = split_args(args)
    if not parts:
        raise UsageError("which word?")
    if len(parts) not in (1, 3) or (len(parts) == 3 and parts[1].lower() != "at"):
        raise UsageError("WORD, or WORD at N")
    word = _word_id(session, parts[0])
    model = _model(session)
    text = session.text_for("units-for")
    if len(parts) == 3:
        k = text.index(parts[2], f":units-for {parts[0]} at", predicted=True) + 1
        ids, where = text.ids(k - 1), f"before word {k} of {text.source}"
    else:
        ids, where = text.ids(), f"after {text.source}"
    split = contributions(model, ids, word)
    try:
        texts = _texts(session)[0]
    except UserError:  # no bundled recipes and no samples: no hints, the figures stand without them
        texts = []
    hints = gates.hints(gates.trace_texts(model, texts)[0], _features(session), "h") if texts else {}
    rows = []
    for unit in split.ranked(10):
        name, r = hints.get(unit, ("", 0.0))
        rows.append((unit, float(split.h[unit]), float(model.weights.Wout[unit, word]), float(split.per_unit[unit]),
                     f"{name} r {r:+.2f}" if name else "-"))
    vocab = session.engine.vocab
    shown = STOP_WORD if word == PAD_ID else vocab.words[word]
    lowest = ", ".join(f"{u} ({split.per_unit[u]:+.2f})" for u in split.lowering(3))
    title = f"units that raise the logit of “{render.safe(shown)}” {where} (h_k × Wout[k, word])"
    caption = (f"Σ contributions {split.per_unit.sum():+.3f} + bias {split.bias:+.3f} = {split.total:+.3f}; "
               f"the engine's logit {split.logit:+.3f} · the model gives “{render.safe(shown)}” "
               f"{render.percent(split.prob)} · lowering it most: {lowest}{_note(model)}")
    session.frontend.show(lstm_view.units_table(rows, title, caption))


# --- :vs-ngram -----------------------------------------------------------------------------------------


def _text_logprobs(session: Session, ids: list[int]) -> np.ndarray:
    """log p (the model's own) of every word of `ids` after the first, from a fresh state, in chunks."""
    from recipe_repl.generate.loop import PREFILL_FLOATS
    from recipe_repl.model.numpy_lstm import log_softmax

    engine = session.engine
    read = ids[:-1]
    out = np.empty(len(read))
    chunk = max(1, PREFILL_FLOATS // len(engine.vocab))
    state = engine.start(1)
    for start in range(0, len(read), chunk):
        logits, state = engine.forward(np.array([read[start:start + chunk]], dtype=np.int64), state)
        logp = log_softmax(logits[0])
        targets = np.array(ids[start + 1:start + 1 + len(logp)])
        out[start:start + len(logp)] = logp[np.arange(len(logp)), targets]
    return out


def _trigram(session: Session) -> TrigramModel:
    from recipe_repl.generate.interventions import base_engine
    from recipe_repl.model import contract, ngram
    from recipe_repl.model.onnx_proto import read_model

    engine = base_engine(session.engine)
    name = engine.info.name
    graph = read_model(engine.info.path, metadata_only=True) if engine.info.path else None
    value = graph.metadata.get(contract.META_NGRAM) if graph else None
    if not value:
        raise UserError(f"{name} carries no 3-gram counts: export it again with this version (export stores "
                        "them), or add them to this file: python -m recipe_repl.export.ngram_counts "
                        f"{engine.info.path} (needs the train extra and the corpus)")
    return ngram.decode(value, len(engine.vocab), name)


def _vs_ngram(session: Session, args: str) -> None:
    from rich.console import Group
    from rich.text import Text

    from recipe_repl.views import lstm_view

    if args.strip():
        raise UsageError("no arguments expected")
    text = session.text_for("vs-ngram")
    ids = _all_ids(text)
    if len(ids) < 2:
        raise UserError(f"{text.source} has one word: nothing to compare")
    tri = _trigram(session)
    lstm = _text_logprobs(session, ids)
    three = tri.logprob(ids)
    delta = lstm - three
    scale = lstm_view.nice_scale(delta)
    words = text.tokens()
    order = np.lexsort((np.arange(delta.size), -delta))

    def rows(picks: Iterable[int]) -> list[tuple[int, str, float, float, float]]:
        return [(int(j) + 2, words[j + 1], float(np.exp(lstm[j])), float(np.exp(three[j])), float(delta[j]))
                for j in picks]

    wins, losses = rows(order[:5]), rows(order[::-1][:5])
    ppl_lstm, ppl_tri = float(np.exp(-lstm.mean())), float(np.exp(-three.mean()))
    session.frontend.show(Group(
        Text(f"log p(LSTM) − log p(3-gram) at each word of {text.source}: red where the LSTM's memory beat the "
             "3-gram's two words of context, blue where the 3-gram did better", style="bold"),
        lstm_view.ScoredText(words, [None, *(float(d) for d in delta)], scale, raw=session.settings.raw),
        lstm_view.Legend(scale, "the 3-gram was surer", "the LSTM was surer", session.settings.raw),
        lstm_view.words_table("where the LSTM wins most", wins, ("LSTM", "3-gram")),
        lstm_view.words_table("where the 3-gram wins most", [r for r in losses if r[4] < 0] or losses,
                              ("LSTM", "3-gram")),
        Text(f"over {len(delta)} words: perplexity {ppl_lstm:,.2f} (LSTM) vs {ppl_tri:,.2f} (Kneser–Ney 3-gram "
             f"of {tri.source or 'the training split'}, as recipe-repl eval fits it) · both the models' own "
             f"probabilities (temperature 1, no processors), the stop token counted where the text ended on it",
             style="dim"),
    ))


def _complete_gates(session: Session, text: str) -> Iterable[str]:
    return list(GATE_KINDS)


@hookimpl
def register_commands(register: Any) -> None:
    """:saliency, :gates, :units-for, :vs-ngram."""
    register("saliency", _saliency, usage=":saliency [N]", example=":saliency 12",
             help="which earlier words made word N of the last text likely (occlusion and gradient × input)",
             details="Every word before word N (default: the last) coloured by its influence on the model's "
                     "log-probability of word N, by two methods, both shown: occlusion (the change when the word "
                     "is read as [UNK], forward passes through ONNX Runtime) and gradient × input (the exact "
                     "gradient with respect to the word's embedding, dotted with it, by NumPy backpropagation "
                     "through the weights in the model file). The five strongest of each in a table, and the "
                     "distance profile: mean |gradient × input| by how many words back, over the whole text. "
                     "Words are numbered as :words shows them (the whole text, prompt first, ⏹ last when the "
                     "sample ended on it; -1 is the last); after :score, the scored text. Needs a stateful "
                     "exported model.")
    register("gates", _gates, usage=":gates [c|f|i|o] [UNIT]", example=":gates f 17", complete=_complete_gates,
             help="one unit's input, forget and output gates, candidate and cell at each word; or which units "
                  "integrate or reset",
             details="`:gates UNIT` shows, for each word of the last text, the unit's gates i, f, o (0 shut, 1 "
                     "open), its candidate g, and its cell: what was written (i·g), kept (f·c) and erased "
                     "((1−f)·c); c, f, i or o first puts that row on top. Without a unit: the share of words at "
                     "which each unit's forget gate is above 0.9 (an integrator) or below 0.1 (a resetter) over "
                     "the validation recipes the model bundles, the five most extreme of each named. The values "
                     "are recomputed in NumPy from the model file and equal ONNX Runtime's h and c.")
    register("units-for", _units_for, usage=":units-for WORD [at N]", example=":units-for cup",
             help="the units that push WORD's logit most at the current position (h_k × Wout[k, WORD])",
             details="After the last text (or, with `at N`, where word N was predicted): each hidden unit's "
                     "direct contribution to the word's logit; they sum, with the output bias, to the logit. "
                     "The hint names the :cells find feature the unit follows (|r| ≥ 0.5 over the bundled "
                     "recipes), where one does.")
    register("vs-ngram", _vs_ngram, usage=":vs-ngram", example=":vs-ngram",
             help="where the LSTM's memory pays: log p(LSTM) − log p(3-gram) at each word of the last text",
             details="The 3-gram is the Kneser–Ney model recipe-repl eval fits on the training split; export "
                     "stores its counts in the model file (python -m recipe_repl.export.ngram_counts adds them "
                     "to an older file). The five biggest wins and losses are listed.")
