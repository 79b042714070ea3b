"""Views: rich renderables the commands and frontends print; they read the vocabulary, base and the book's
tables (`recipe_repl.models.lecture`) only.

    render     safe text (every untrusted word through the sanitizer), probability tables, footers
    heat       five probability bands and how each word of a sample is marked by its band
    cell_view  an LSTM unit's value after each word, on a diverging background, and the word × unit strip
    lstm_view  a text coloured by a signed score, the gates strip, the tables of the views inside the LSTM
    wrap       word wrapping for a line that arrives one word at a time
    words_view a text's words with their numbers (`:words`), a branched text with its branch point
    help_view  the command list laid out for the terminal's width (`:help`)
    lecture_view  the book's next-word table beside this model's (`:lecture`)
"""
