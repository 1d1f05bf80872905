async def run(ctx): pass
