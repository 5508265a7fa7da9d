"""Small helpers to present results in the Dagster UI."""

import pandas as pd


def markdown_table(frame: pd.DataFrame, max_cell: int = 60) -> str:
    if frame.empty:
        return "_no rows_"

    def cell(value) -> str:
        text = "" if pd.isna(value) else str(value)
        return text[:max_cell].replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
