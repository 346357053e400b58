print("shuttle")
