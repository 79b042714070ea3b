"""Training throughput: the lecture's tf.data + model.fit pipeline vs recipe-repl's (length buckets, masked loss).

Same corpus, same model size, same seed, one epoch each, in one run. Throughput counts *real* tokens:
targets that are text or the first stop token, not padding. Prints both figures, the validation
loss (masked, the same measure for both) after the epoch, and the speed ratio.

    .venv/bin/python benchmarks/bench_train.py                 # builtin corpus, the lecture's sizes
    .venv/bin/python benchmarks/bench_train.py --recipes 1000  # a quicker look
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="builtin")
    ap.add_argument("--recipes", type=int, default=None, help="use only the first N recipes")
    ap.add_argument("--seq-len", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--embedding-dim", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    import keras
    import tensorflow as tf
    from recipe_repl.train import preprocess
    from recipe_repl.train.corpus import load_corpus
    from recipe_repl.train.model import build_model
    from recipe_repl.train.steps import Steps

    corpus = load_corpus(args.data)
    texts = corpus.texts[: args.recipes] if args.recipes else corpus.texts
    train_texts, val_texts = preprocess.split_texts(texts, 0.1, args.seed)
    layer = preprocess.adapt_vectorizer(train_texts, 10000, args.seq_len, corpus.lowercase)
    vocab_len = len(layer.get_vocabulary())
    ids_train = preprocess.vectorize(layer, train_texts, corpus.lowercase)
    ids_val = preprocess.vectorize(layer, val_texts, corpus.lowercase)
    real_tokens = int(preprocess.loss_weights(ids_train, mask=True).sum())
    print(f"{corpus.name}: {len(train_texts)} train / {len(val_texts)} validation recipes, vocabulary {vocab_len}, "
          f"{real_tokens:,} real training tokens, seq_len {args.seq_len}, batch {args.batch_size}, "
          f"LSTM {args.units}, embedding {args.embedding_dim}")

    def val_loss(model) -> float:
        opt = keras.optimizers.Adam()
        opt.build(model.trainable_variables)
        return Steps(tf, keras, model, opt, tf.distribute.get_strategy(), False).evaluate(ids_val, 64)[0]

    # --- the lecture: strings through tf.data, TextVectorization in the pipeline, model.fit, loss on all positions
    keras.utils.set_random_seed(args.seed)
    lecture = build_model(vocab_len, args.embedding_dim, args.units)
    lecture.compile(optimizer=keras.optimizers.Adam(),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    prepared = [preprocess.prepare(t, corpus.lowercase) for t in train_texts]
    text_ds = tf.data.Dataset.from_tensor_slices(prepared).batch(args.batch_size).shuffle(1000, seed=args.seed)

    def prepare_inputs(text):
        tokenized = layer(tf.expand_dims(text, -1))
        tokenized = tf.squeeze(tokenized, axis=1) if len(tokenized.shape) == 3 else tokenized
        return tokenized[:, :-1], tokenized[:, 1:]

    train_ds = text_ds.map(prepare_inputs)
    t0 = time.perf_counter()
    lecture.fit(train_ds, epochs=1, verbose=0)
    lecture_s = time.perf_counter() - t0
    lecture_val = val_loss(lecture)

    # --- recipe-repl: pre-vectorized ids, length buckets, masked loss, custom step
    keras.utils.set_random_seed(args.seed)
    ours = build_model(vocab_len, args.embedding_dim, args.units)
    opt = keras.optimizers.Adam()
    opt.build(ours.trainable_variables)
    steps = Steps(tf, keras, ours, opt, tf.distribute.get_strategy(), False)
    batches = preprocess.bucketed_batches(ids_train, args.batch_size, shuffle_seed=args.seed)
    t0 = time.perf_counter()
    for _ in steps.train_epoch(batches):
        pass
    ours_s = time.perf_counter() - t0
    ours_val = val_loss(ours)

    positions = lambda bs: sum(b.x.size for b in bs)  # noqa: E731
    lecture_positions = len(ids_train) * args.seq_len
    print(f"lecture pipeline : {lecture_s:7.1f} s  {real_tokens / lecture_s:9,.0f} real tok/s  "
          f"{lecture_positions:,} positions computed  val loss {lecture_val:.4f}")
    print(f"bucketed, masked : {ours_s:7.1f} s  {real_tokens / ours_s:9,.0f} real tok/s  "
          f"{positions(batches):,} positions computed  val loss {ours_val:.4f}")
    ratio = lecture_s / ours_s
    print(f"speed ratio (real tokens/s, bucketed / lecture): {ratio:.2f}x "
          f"(target >= 1.5x; val loss {'equal or lower' if ours_val <= lecture_val + 1e-3 else 'HIGHER'})")


if __name__ == "__main__":
    main()
