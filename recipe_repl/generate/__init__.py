"""Generation: from logits to words, and the numbers behind each word.

    sampling     the processor chain and the draw (Sampler); `choose_word` is the reference to read
    fast_draw    the draw `Sampler.sample` takes: `choose_word`'s word, in fewer passes, allocating nothing
    loop         the one generation loop: prefill, step, choose, stop — for every frontend and command
    beam         beam search through the same stepper and stop check
    model_probs  the model's own probability of each chosen word, beside the sampling one
    scoring      the model's own probability of each word of a given text, and its perplexity
    numbering    one numbering of a text's words (word N of the whole text, ⏹ last) for every view
    inspection   both next-word distributions (model and sampling) before any word; a text cut back
    cells        the LSTM's (h, c) after every word, and units that follow a feature of the text
    lstm_model     the weights behind an engine, checked against what the engine computes
    influence      which earlier words made a word likely: occlusion, gradient × input, distance profile
    gates          each gate of a unit at each word; which units integrate or reset
    interventions  units held at a value, a patched state, one logit split over the units

Everything that samples goes through `loop.generate` and `sampling.Sampler`; the model behind it is
any `recipe_repl.model.engine.Engine`.
"""
