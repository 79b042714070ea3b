"""How a model uses its title: the figures `recipe-repl eval` reports beside perplexity (issue 19).

- **title use**: the held-out bodies' perplexity after another recipe's title (a seeded derangement of
  the titles) over their perplexity after their own title. 1.00 means the title changes nothing.
- **title words in samples**: the share of samples, prompted with held-out titles ("recipe for T |"),
  whose body names a content word of the title; beside it the same share in the held-out recipes.
- **loops**: the share of samples (at a low temperature) in which some 4-gram comes three times or more.

Everything here goes through the runtime's `Engine` interface (an ONNX file, or a Keras model in
training behind `PrefixEngine`) and the one generation loop, so it imports no TensorFlow. Seeded:
the same model, data and seed give the same figures.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recipe_repl.model.engine import Engine
from recipe_repl.model.vocab import PAD_ID, UNK_ID, Vocabulary

SEPARATOR = " | "  # between a recipe's title and its body, in every corpus
TEMPERATURES = (1.0, 0.5, 0.2)  # samples for "title words in samples"; loops use the lowest
SAMPLE_TOKENS = 150  # generated tokens per sample (the bodies of the data are cut to as many words)
LOOP_N, LOOP_TIMES = 4, 3  # a loop: some 4-gram three times or more

# Title words that do not name what the recipe is made of: they are not counted as content words.
STOPWORDS = frozenset("""
recipe for and with the a an of in on to or from at by my our your his her de la le les du au aux a la al
con e y di del style easy simple quick quickest best perfect classic homemade home made traditional basic
fast healthy old fashioned new no how way ii iii
""".split())


def derangement(n: int, seed: int) -> list[int]:
    """A seeded random permutation with no fixed point (Sattolo's algorithm: one cycle through all n).

    `result[i]` is the recipe whose title recipe i gets. n = 0 or 1 has no derangement: the identity.
    """
    order = list(range(n))
    rng = np.random.default_rng(seed)
    for i in range(n - 1, 0, -1):
        j = int(rng.integers(0, i))  # j < i: never stays in place, which makes it one cycle
        order[i], order[j] = order[j], order[i]
    return order


def split_title(text: str) -> tuple[str, str]:
    """("Recipe for T |", "body") of a corpus text; a text without the separator is all title."""
    title, sep, body = text.partition(SEPARATOR)
    return (title + " |", body) if sep else (text, "")


@dataclass
class Scored:
    """Summed negative log-likelihood over the scored targets."""

    nll: float = 0.0
    tokens: int = 0

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll / max(self.tokens, 1))


def score_from(engine: Engine, items: Sequence[tuple[list[int], int | Sequence[bool]]], batch_size: int = 32) -> Scored:
    """NLL of the targets seq[start:] of each (seq, start), every sequence fed from a fresh state; or, when
    `start` is a list of flags (one per target seq[1:]), of the flagged targets.

    Sequences are scored in batches of similar length (padding sits after a sequence's end, where an
    LSTM's earlier outputs do not see it, and is not scored).
    """
    total = Scored()
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    for b in range(0, len(order), batch_size):
        chunk = [items[i] for i in order[b:b + batch_size] if len(items[i][0]) >= 2]
        if not chunk:
            continue
        T = max(len(s) - 1 for s, _ in chunk)
        x = np.zeros((len(chunk), T), np.int64)
        y = np.zeros((len(chunk), T), np.int64)
        scored = np.zeros((len(chunk), T), bool)
        for r, (s, start) in enumerate(chunk):
            x[r, : len(s) - 1], y[r, : len(s) - 1] = s[:-1], s[1:]
            if isinstance(start, int):
                scored[r, max(start, 1) - 1 : len(s) - 1] = True  # target s[t + 1] is predicted at position t
            else:
                scored[r, : len(s) - 1] = np.asarray(start, bool)[: len(s) - 1]
        logits, _ = engine.forward(x, engine.start(len(chunk)))
        logp = np.asarray(logits, np.float64)
        logp -= logp.max(-1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
        tgt = np.take_along_axis(logp, y[..., None], -1)[..., 0]
        total.nll -= float(tgt[scored].sum())
        total.tokens += int(scored.sum())
    return total


def body_items(vocab: Vocabulary, texts: Sequence[str], seq_len: int) -> list[tuple[list[int], list[int]]]:
    """(title ids up to "|", body ids) per text, the body cut where training cut the text (seq_len + 1
    ids) and closed by the stop token when it was not cut."""
    out = []
    for text in texts:
        title, body = split_title(text)
        t_ids, b_ids = vocab.encode(title), vocab.encode(body)
        room = max(seq_len + 1 - len(t_ids), 0)
        out.append((t_ids, b_ids[:room] + ([PAD_ID] if len(b_ids) <= room - 1 else [])))
    return out


@dataclass
class TitleUse:
    """Body perplexity after the own title and after another recipe's title; `ratio` = deranged / own."""

    recipes: int
    body_tokens: int
    own_perplexity: float
    deranged_perplexity: float
    ratio: float


def title_use(engine: Engine, texts: Sequence[str], seq_len: int, seed: int = 0, batch_size: int = 32) -> TitleUse:
    """The bodies' perplexity with a deranged title over with their own (only body targets count)."""
    items = [(t, b) for t, b in body_items(engine.vocab, texts, seq_len) if b]
    perm = derangement(len(items), seed)
    own = score_from(engine, [(t + b, len(t)) for t, b in items], batch_size)
    other = score_from(engine, [(items[j][0] + b, len(items[j][0])) for (_, b), j in zip(items, perm, strict=True)],
                       batch_size)
    return TitleUse(len(items), own.tokens, own.perplexity, other.perplexity, other.perplexity / own.perplexity)


def title_word_use(engine: Engine, texts: Sequence[str], seq_len: int, seed: int = 0,
                   batch_size: int = 32) -> TitleUse:
    """`title_use` scored only where the body names a content word of its own title: how much likelier
    the title's own words are after the own title (a sharper, earlier sign than the whole body's)."""
    vocab = engine.vocab
    kept = [(t, b, content_words(vocab, split_title(text)[0]))
            for text, (t, b) in zip(texts, body_items(vocab, texts, seq_len), strict=True) if b]
    perm = derangement(len(kept), seed)

    def flags(title: list[int], body: list[int], wanted: set[str]) -> list[bool]:
        """One flag per target of title + body: the body's words that name the own title."""
        return [False] * (len(title) - 1) + [stem(vocab.words[i]) in wanted for i in body]

    own = score_from(engine, [(t + b, flags(t, b, w)) for t, b, w in kept], batch_size)
    other = score_from(engine, [(kept[j][0] + b, flags(kept[j][0], b, w))
                                for (_, b, w), j in zip(kept, perm, strict=True)], batch_size)
    return TitleUse(len(kept), own.tokens, own.perplexity, other.perplexity, other.perplexity / own.perplexity)


def ngram_title_use(token_nll: Callable[[list[int]], np.ndarray], vocab: Vocabulary, texts: Sequence[str],
                    seq_len: int, seed: int = 0) -> TitleUse:
    """`title_use` for a model given as per-target NLLs of a sequence (the 3-gram's `token_nlls`)."""
    items = [(t, b) for t, b in body_items(vocab, texts, seq_len) if b]
    perm = derangement(len(items), seed)
    own = other = 0.0
    n = 0
    for (t, b), j in zip(items, perm, strict=True):
        own += float(token_nll(t + b)[len(t) - 1:].sum())  # token_nll(seq)[k] is the NLL of seq[k + 1]
        other += float(token_nll(items[j][0] + b)[len(items[j][0]) - 1:].sum())
        n += len(b)
    own_ppl, other_ppl = math.exp(own / max(n, 1)), math.exp(other / max(n, 1))
    return TitleUse(len(items), n, own_ppl, other_ppl, other_ppl / own_ppl)


def stem(word: str) -> str:
    """A crude English plural fold, so that "tomatoes" names "tomato" and "berries" names "berry"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("oes", "ches", "shes", "xes", "sses")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(vocab: Vocabulary, title: str) -> set[str]:
    """The title's words that name something: letters only, 3+ characters, not a stop word, not [UNK]."""
    words = set()
    for i, word in zip(vocab.encode(title), vocab.prepare(title), strict=False):
        if i == UNK_ID or len(word) < 3 or not word.isalpha() or word in STOPWORDS:
            continue
        words.add(stem(word))
    return words


def names_title(vocab: Vocabulary, title: str, body_words: Sequence[str]) -> bool | None:
    """Whether the body names a content word of the title; None when the title has none."""
    wanted = content_words(vocab, title)
    if not wanted:
        return None
    return any(stem(w) in wanted for w in body_words)


def has_loop(tokens: Sequence[int] | Sequence[str], n: int = LOOP_N, times: int = LOOP_TIMES) -> bool:
    """Whether some n-gram of the sequence comes `times` times or more (overlapping occurrences count)."""
    grams = Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return bool(grams) and max(grams.values()) >= times


@dataclass
class SampleFigures:
    """Title words and loops in the samples of one temperature."""

    temperature: float
    samples: int
    with_title_words: int  # samples whose body names a content word of their title (titles with one)
    judged: int  # samples whose title has a content word
    loops: int

    @property
    def title_share(self) -> float:
        return self.with_title_words / max(self.judged, 1)

    @property
    def loop_share(self) -> float:
        return self.loops / max(self.samples, 1)


@dataclass
class SampleReport:
    """The samples' figures per temperature, and the same measures on the held-out recipes."""

    titles: int
    max_tokens: int
    data_with_title_words: int  # held-out bodies (cut to max_tokens words) naming a content word of the title
    data_judged: int  # held-out recipes whose title has a content word
    data_loops: int  # held-out bodies (cut likewise) with a loop
    per_temperature: list[SampleFigures] = field(default_factory=list)

    @property
    def data_title_share(self) -> float:
        return self.data_with_title_words / max(self.data_judged, 1)

    @property
    def data_loop_share(self) -> float:
        return self.data_loops / max(self.titles, 1)


def pick_titles(texts: Sequence[str], n: int, seed: int) -> list[str]:
    """`n` held-out texts drawn with `seed` (all of them when there are fewer), in their order."""
    if len(texts) <= n:
        return list(texts)
    keep = sorted(np.random.default_rng(seed).choice(len(texts), n, replace=False).tolist())
    return [texts[i] for i in keep]


def title_prompt(text: str) -> str:
    """The lecture's prompt for a recipe's title: "recipe for T |"."""
    title, _ = split_title(text)
    return title[:1].lower() + title[1:]


def sample_figures(engine: Engine, texts: Sequence[str], seed: int = 0,
                   temperatures: Sequence[float] = TEMPERATURES, max_tokens: int = SAMPLE_TOKENS,
                   batch_size: int = 64) -> SampleReport:
    """Sample each text's title at each temperature (seeded) and count title words and loops.

    Through the runtime's one generation loop with the built-in processors only: pure temperature,
    as the lecture samples.
    """
    from recipe_repl.base.settings import Settings
    from recipe_repl.generate.loop import Request, generate
    from recipe_repl.plugin.manager import Plugins

    vocab = engine.vocab
    prompts = [title_prompt(t) for t in texts]
    data_hits = [names_title(vocab, p, vocab.prepare(split_title(t)[1])[:max_tokens])
                 for p, t in zip(prompts, texts, strict=True)]
    judged_data = [h for h in data_hits if h is not None]
    data_loops = [has_loop(vocab.encode(split_title(t)[1])[:max_tokens]) for t in texts]
    report = SampleReport(len(texts), max_tokens, sum(judged_data), len(judged_data), sum(data_loops))
    specs = Plugins(load_third_party=False).processor_specs()
    for temp in temperatures:
        settings = Settings(temperature=temp, seed=seed, max_tokens=max_tokens)
        requests = [Request(p, key=k) for k, p in enumerate(prompts)]
        figs = SampleFigures(temp, 0, 0, 0, 0)
        for sample in generate(engine, requests, settings, specs, batch_size=batch_size):
            figs.samples += 1
            hit = names_title(vocab, sample.prompt, sample.words)
            if hit is not None:
                figs.judged += 1
                figs.with_title_words += int(hit)
            figs.loops += int(has_loop(sample.token_ids))
        report.per_temperature.append(figs)
    return report


def as_dict(obj: Any) -> dict[str, Any]:
    """A figures dataclass as plain values (with its derived shares) for JSON and the model card."""
    data: dict[str, Any] = asdict(obj)
    if isinstance(obj, SampleReport):
        data |= {"data_title_share": obj.data_title_share, "data_loop_share": obj.data_loop_share}
        for fig, row in zip(obj.per_temperature, data["per_temperature"], strict=True):
            row |= {"title_share": fig.title_share, "loop_share": fig.loop_share}
    return data


def pool(reports: Sequence[SampleReport]) -> SampleReport:
    """Several corpora's sample figures as one (counts added; data shares weighted by titles)."""
    titles = sum(r.titles for r in reports)
    out = SampleReport(titles, reports[0].max_tokens if reports else SAMPLE_TOKENS,
                       sum(r.data_with_title_words for r in reports), sum(r.data_judged for r in reports),
                       sum(r.data_loops for r in reports))
    for figs in zip(*(r.per_temperature for r in reports), strict=True):
        out.per_temperature.append(SampleFigures(figs[0].temperature, sum(f.samples for f in figs),
                                                 sum(f.with_title_words for f in figs),
                                                 sum(f.judged for f in figs), sum(f.loops for f in figs)))
    return out
