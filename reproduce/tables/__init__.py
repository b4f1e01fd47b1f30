"""The paper's tables as data (``reproduce/tables/paper/tableNN.yaml``), and their rendering."""
