"""What a model is and where it lives.

``zoo`` builds the models of the recipes, ``io`` saves and loads them safely, and
``registry`` versions them under any fsspec URL. Nothing here imports Prefect, tasks or
flows, and nothing happens at import time.
"""
