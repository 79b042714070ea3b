"""Built-in logits processors, driven by the settings: [UNK] ban, repetition penalty, temperature,
top-k, top-p and min-p, each registered at its place in `sampling.CHAIN` (the order `choose_word`,
the reference sampler in generate/sampling.py, runs them in)."""

from __future__ import annotations

from typing import Any

from recipe_repl.base.settings import Settings
from recipe_repl.generate import sampling
from recipe_repl.model.vocab import UNK_ID, Vocabulary
from recipe_repl.plugin.hookspecs import hookimpl


def _ban_unk(settings: Settings, args: tuple[str, ...], vocab: Vocabulary) -> sampling.Processor | None:
    if settings.allow_unk:
        return None
    return lambda logits, ctx: sampling.ban_tokens(logits, [UNK_ID])


def _repetition(settings: Settings, args: tuple[str, ...], vocab: Vocabulary) -> sampling.Processor | None:
    if settings.repetition_penalty == 1.0:
        return None
    penalty = settings.repetition_penalty
    return lambda logits, ctx: sampling.apply_repetition_penalty(logits, ctx.history, penalty)


def _temperature(settings: Settings, args: tuple[str, ...], vocab: Vocabulary) -> sampling.Processor | None:
    t = settings.temperature
    if sampling.is_greedy(settings) or t == 1.0:  # greedy is the Sampler's own rule; 1 changes nothing
        return None
    return lambda logits, ctx: sampling.apply_temperature(logits, t)


def _top_k(settings: Settings, args: tuple[str, ...], vocab: Vocabulary) -> sampling.Processor | None:
    k = settings.top_k
    return (lambda logits, ctx: sampling.apply_top_k(logits, k)) if k > 0 else None


def _top_p(settings: Settings, args: tuple[str, ...], vocab: Vocabulary) -> sampling.Processor | None:
    p = settings.top_p
    return (lambda logits, ctx: sampling.apply_top_p(logits, p)) if p < 1.0 else None


def _min_p(settings: Settings, args: tuple[str, ...], vocab: Vocabulary) -> sampling.Processor | None:
    m = settings.min_p
    return (lambda logits, ctx: sampling.apply_min_p(logits, m)) if m > 0 else None


@hookimpl
def register_processors(register: Any) -> None:
    """The settings-driven processors, each at its place in `sampling.CHAIN`."""
    at = sampling.chain_order
    register("ban-unk", _ban_unk, help="never emit [UNK] (:unk off)", order=at("ban-unk"), automatic=True)
    register("repetition", _repetition, help="repetition penalty (:repeat R)", order=at("repetition"), automatic=True)
    register("temperature", _temperature, help="divide logits by T (:temp T)", order=at("temperature"), automatic=True)
    register("top-k", _top_k, help="keep the k most likely words (:topk K)", order=at("top-k"), automatic=True)
    register("top-p", _top_p, help="nucleus sampling (:topp P)", order=at("top-p"), automatic=True)
    register("min-p", _min_p, help="drop words below P × the top word (:minp P)", order=at("min-p"), automatic=True)
