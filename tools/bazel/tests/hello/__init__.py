"""A minimal ETL package: the fixture of the etl_package rule tests."""
