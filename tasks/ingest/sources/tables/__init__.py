"""Tables of CSV and Parquet files: listing, reading, typed columns, time windows, labels."""
