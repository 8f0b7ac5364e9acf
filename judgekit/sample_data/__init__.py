"""Small synthetic datasets shipped with judgekit (see ``judgekit.sample_data.generate``)."""
