"""Where frames come from: video files, image folders, single images, cameras."""
