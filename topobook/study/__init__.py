"""The studies of the book: paired statistics over seeds (``stats``), the confirmatory design of
chapter 7 (``confirmatory``, with its pre-registration) and its analysis
(``confirmatory_analysis``), the chapter-run planners (``chapter4``, ``confirmatory``,
``topomortar_study``: one shape, ``chapter_runs(parameters)``), table formatting (``tables``),
the timing tables (``timing``), chapter 8's analysis of its Betti-0 errors
(``betti0_decomposition``) and the book's answers, question by question (``findings``).
"""
