-- Placeholder so the migrator has a directory; real tables come in later migrations.
SELECT 1;
