"""Analysis of runs: load, exact statistics, reports, comparisons and scaling fits."""
