"""Built-in commands that make the generation loop visible: `:pace MS|off` and `:step`.

At a thousand words a second the stream is instantaneous and the lecture's `generate` loop (predict,
reshape, draw, append, repeat) is invisible. `:pace` slows the stream to at most one word per MS
milliseconds; `:step` runs the same loop one word per Enter, each word shown with the table it was
drawn from — the model's column and the sampling one — the lecture's `info` output made live.
Both need a person at a terminal (batch mode answers them with one clear line).

`:step` is a chooser for the one generation loop, like `:pick`'s: the word it shows is the sampler's
own draw with the sample's seeded generator, so `:seed 7` then `:step` gives the text the prompt gives.
"""

from __future__ import annotations

from typing import Any

from recipe_repl.base.errors import BadValue, UsageError
from recipe_repl.generate.inspection import model_distribution, reshapes
from recipe_repl.generate.loop import STOP_HERE, Step, StopReason
from recipe_repl.model.vocab import PAD_ID, detokenize
from recipe_repl.plugin.commands import count_arg, one_arg
from recipe_repl.plugin.hookspecs import hookimpl
from recipe_repl.session.session import Session

MAX_PACE_MS = 10_000
STEP_HELP = "Enter shows the next word and the table it was drawn from · s, Ctrl-C or Ctrl-D stops (the text stays)"


def _pace(session: Session, args: str) -> None:
    word = one_arg(args).lower()
    frontend: Any = session.frontend
    if word in ("off", "0"):
        frontend.pace_ms = 0
        session.say("pace off: words stream as fast as the model writes them")
        return
    try:
        ms = int(word)
    except ValueError:
        raise BadValue(f"pace is a number of milliseconds, or off, not {word!r}") from None
    if not 1 <= ms <= MAX_PACE_MS:
        raise BadValue(f"pace must be between 1 and {MAX_PACE_MS:,} milliseconds (or off)")
    frontend.pace_ms = ms
    session.say(f"pace = {ms} ms: at most one word every {ms} ms ({1000 / ms:,.1f} words/s); :pace off for full speed")


def _step(session: Session, args: str) -> None:
    parts = args.split()
    if len(parts) > 1:
        raise UsageError("too many arguments")
    n = count_arg(parts[0], "the number of rows") if parts else session.settings.probs_n
    prompt = session.prompt_or_ask("step")
    session.say(f"one word at a time: {STEP_HELP}")
    [sample] = session.run_requests([prompt], chooser=StepChooser(session, n), live=False)
    if sample.stop_reason == StopReason.STOP_TOKEN:
        session.say("the stop token ends the recipe")


class StepChooser:
    """`:step`'s chooser: waits for Enter, draws as the sampler would, shows the word and its table."""

    def __init__(self, session: Session, n: int) -> None:
        self.session, self.n = session, n
        self.reshaped = reshapes(session.settings, session.plugins.processor_specs(), session.engine.vocab)

    def __call__(self, step: Step) -> list[int]:
        """The next token of the one row (the sampler's draw), or STOP_HERE when the person stops."""
        from recipe_repl.views import render

        try:
            answer = self.session.frontend.ask(f"word {len(step.history[0]) + 1}: Enter, or s to stop: ")
        except (KeyboardInterrupt, EOFError):
            return [STOP_HERE]
        if answer.strip().lower() in ("s", "q", "stop"):
            return [STOP_HERE]
        token = int(step.draw()[0])
        probs = step.probs[0]
        model = model_distribution(step.logits[0]) if step.logits is not None else None
        vocab = self.session.engine.vocab
        text = detokenize(vocab.decode_tokens(step.history[0]), capitalize=False)
        title = render.after_title(text)
        title.append(f"   (step {step.step + 1})", style="dim")
        self.session.frontend.show(render.prob_table(
            vocab, probs, self.n, title=title, chosen=token, model=model if self.reshaped else None,
            caption=render.columns_caption(self.session.settings, self.reshaped)))
        shown = render.END_MARKER if token == PAD_ID else vocab.word(token)
        drawn = f"drawn at {render.percent(float(probs[token]))}"
        if model is not None and self.reshaped:
            drawn += f"; the model gave it {render.percent(float(model[token]))}"
        self.session.say(render.safe(f"word {len(step.history[0]) + 1}: {shown} ({drawn})"))
        return [token]


@hookimpl
def register_commands(register: Any) -> None:
    """:pace and :step."""
    register("pace", _pace, usage=":pace MS|off", example=":pace 200", interactive_only=True,
             complete=lambda s, t: ["off", "100", "200", "500"],
             help="stream at most one word every MS milliseconds (off: full speed)",
             details="Slows the live stream so the loop can be watched: every word is printed, then the loop "
                     "waits until MS milliseconds have passed since the last one. Ctrl-C still stops a "
                     "generation and keeps its words.")
    register("step", _step, usage=":step [N]", example=":step", interactive_only=True,
             help="generate one word per Enter, each shown with the table it was drawn from",
             details=f"From the last prompt (or one you type). {STEP_HELP}. The table shows the N most likely "
                     "words (default: :probs' rows), the model's probability and, when the settings reshape "
                     "it, the one drawn from; the drawn word is marked. The word is the sampler's own draw: "
                     "with a seed, :step gives the text the prompt gives. :continue goes on after a stop.")
